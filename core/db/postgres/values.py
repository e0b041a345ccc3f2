"""Checks and conversions of values before they reach SQL, shared by the adapter's parts.

Page bounds, text keys, JSON values and millisecond times are validated here so bad input
becomes a ``ValueError`` naming the value before any SQL runs.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_jsonable_python

#: Largest page any list method returns; bigger asks are refused rather than silently cut.
MAX_PAGE_SIZE = 1000
#: Longest table name, log type or cache key (characters).
MAX_NAME_LENGTH = 1000

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MILLISECOND = timedelta(milliseconds=1)
# A JSON text holds a NUL character when "\u0000" follows an even number of backslashes.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def check_page(limit: int, offset: int = 0) -> None:
    """Validate page bounds before any SQL runs.

    Args:
        limit: Rows per page, 1 to ``MAX_PAGE_SIZE``.
        offset: Rows to skip, 0 or more.

    Raises:
        ValueError: a bound is not an int or is out of range.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a non-negative integer, got {offset!r}")


def check_name(value: str, what: str) -> str:
    """Validate a text key or filter value (table name, log type, cache key).

    Raises:
        ValueError: not a string, empty, longer than ``MAX_NAME_LENGTH``, or holding NUL
            (which Postgres text cannot store).
    """
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_LENGTH or "\x00" in value:
        raise ValueError(f"{what} must be a string of 1 to {MAX_NAME_LENGTH} characters without NUL")
    return value


def json_text(value: Any, what: str = "value", *, coerce: bool = False) -> str:
    """``value`` as JSON text for a ``%s::jsonb`` parameter.

    Serialising here (not in the driver) turns everything Postgres would refuse into a
    ``ValueError`` that names the value, before any SQL runs.

    Args:
        value: The value.
        what: Its name, for the error message.
        coerce: Store values JSON has no type for (UUID, datetime, set, pydantic models...)
            as pydantic would (strings, lists, objects) instead of refusing them.

    Raises:
        ValueError: not JSON-serialisable, NaN or infinity, or a string holding NUL.
    """
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"), default=to_jsonable_python if coerce else None)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from exc
    if _JSON_NUL.search(text):
        raise ValueError(f"{what} holds a NUL character, which Postgres jsonb cannot store")
    return text


def from_ms(ms: int, what: str = "time") -> datetime:
    """A UTC datetime from milliseconds since the epoch (exact, no float rounding).

    Raises:
        ValueError: ``ms`` is not an int, or outside the years 1 to 9999.
    """
    if isinstance(ms, bool) or not isinstance(ms, int):
        raise ValueError(f"{what} must be milliseconds since the epoch (int), got {ms!r}")
    try:
        return EPOCH + timedelta(milliseconds=ms)
    except OverflowError as exc:
        raise ValueError(f"{what} is out of range: {ms}") from exc


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch of a timezone-aware datetime (floored, exact)."""
    return (moment - EPOCH) // _MILLISECOND
