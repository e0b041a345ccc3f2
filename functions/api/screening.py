"""Input no route can store: refused at the edge with a 4xx naming where it is, before anything is written.

Valid JSON can still hold what Postgres and UTF-8 refuse, and each used to surface as a 500 deep in
a write (after some rows were already written):

- a NUL character (``\\u0000``): Postgres ``text`` cannot hold it, ``jsonb`` refuses it;
- a lone surrogate (``\\ud800``...): not encodable as UTF-8;
- ``NaN`` / ``Infinity``: Python's parser accepts them, JSON and ``jsonb`` do not;
- a number too large for a double (``1e400``): Python reads it as infinity, which ``jsonb``
  refuses and a silent ``null`` would hide;
- nesting deeper than ``MAX_DEPTH``: no body of this API needs it, and a parser's recursion does.

The same applies to query string values. Every body is checked once here, whatever its route
(plugin routes included), so routes and models need no rule of their own.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Deepest nesting accepted in a body (a character document, the deepest thing we take, needs < 10).
MAX_DEPTH = 64
#: What a string may not contain: NUL, and UTF-16 surrogates (only ever halves of a pair in Python str).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class RefusedInput(ValueError):
    """Input refused before routing.

    Attributes:
        status: 400 (not JSON) or 422 (JSON, with a value that cannot be stored).
        error: ``invalid_json`` or ``validation_error``.
        field: Where: ``metadata.x``, ``items.2``, a query parameter's name, or ``body``.
        location: ``body`` or ``query``.
    """

    def __init__(self, status: int, error: str, message: str, field: str = "body", location: str = "body") -> None:
        super().__init__(message)
        self.status, self.error, self.field, self.location = status, error, field, location

    def response(self) -> dict[str, Any]:
        """The API's error shape, as a Lambda proxy response."""
        body: dict[str, Any] = {"error": self.error, "message": str(self)}
        if self.status == 422:
            body["message"] = f"invalid request: {self.field}"
            body["fields"] = [
                {"field": self.field, "location": self.location, "type": "unsupported_value", "message": str(self)}
            ]
        return {"statusCode": self.status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def screen_body(text: str | None) -> None:
    """Check a JSON body (already decoded to text); an empty body passes (routes say if they need one).

    Raises:
        RefusedInput: 400 for text that is not JSON (or nests past ``MAX_DEPTH``, or uses ``NaN``);
            422 for a string that cannot be stored, naming its path.
    """
    if not text:
        return
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise RefusedInput(400, "invalid_json", f"the request body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # json.JSONDecodeError, and _no_constant's
        raise RefusedInput(400, "invalid_json", f"the request body is not valid JSON ({exc})") from None
    _screen(value, [], 0)


def screen_query(parameters: dict[str, str] | None) -> None:
    """Check query string values (and names) for what no route can store.

    Raises:
        RefusedInput: 422 naming the parameter.
    """
    for name, value in (parameters or {}).items():
        if _UNSTORABLE.search(name) or _UNSTORABLE.search(value):
            raise RefusedInput(
                422,
                "validation_error",
                "a NUL or an unpaired surrogate cannot be stored",
                field=_UNSTORABLE.sub("?", name),
                location="query",
            )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _screen(value: Any, path: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise RefusedInput(400, "invalid_json", f"the request body nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):  # NaN/Infinity literals never get here
        raise RefusedInput(
            422, "validation_error", "the number is too large for a double", field=".".join(path) or "body"
        )
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            raise RefusedInput(
                422,
                "validation_error",
                "a NUL or an unpaired surrogate cannot be stored",
                field=".".join(path) or "body",
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            if _UNSTORABLE.search(key):
                raise RefusedInput(
                    422,
                    "validation_error",
                    "a NUL or an unpaired surrogate cannot be stored",
                    field=".".join([*path, _UNSTORABLE.sub("?", key)]),
                )
            _screen(item, [*path, key], depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _screen(item, [*path, str(index)], depth + 1)
