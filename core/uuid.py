"""Deterministic UUIDs, compatible with elizaOS.

Source: elizaOS ``packages/core/src/utils.ts`` (``stringToUuid``, ``createUniqueUuid``):
the SHA-1 of the URI-encoded string, truncated to 16 bytes, with the variant bits set
and the version nibble cleared. Ids made here equal the ones elizaOS makes, so data
can move between the two.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote
from uuid import UUID

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
# encodeURIComponent leaves these unescaped; Python's quote() needs them listed.
_URI_COMPONENT_SAFE = "-_.!~*'()"


def string_to_uuid(value: str | int) -> UUID:
    """Map any string to a stable UUID, as elizaOS ``stringToUuid`` does.

    Args:
        value: Any string or integer. A string that already is a UUID is returned as is.

    Returns:
        The UUID.

    Raises:
        TypeError: ``value`` is neither ``str`` nor ``int``.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"string_to_uuid takes str or int, not {type(value).__name__}")
    text = str(value)
    if _UUID_RE.match(text):
        return UUID(text)
    digest = bytearray(hashlib.sha1(quote(text, safe=_URI_COMPONENT_SAFE).encode()).digest()[:16])
    digest[8] = (digest[8] & 0x3F) | 0x80
    digest[6] = digest[6] & 0x0F
    return UUID(bytes=bytes(digest))


def create_unique_uuid(agent_id: UUID, base_id: str | UUID) -> UUID:
    """An id unique to one agent, as elizaOS ``createUniqueUuid(runtime, baseUserId)``.

    Args:
        agent_id: The agent the id belongs to.
        base_id: An id from outside (a platform user id, a room id...).

    Returns:
        ``agent_id`` itself when ``base_id`` is the agent id, else ``string_to_uuid("{base}:{agent}")``.
    """
    if str(base_id) == str(agent_id):
        return agent_id
    return string_to_uuid(f"{base_id}:{agent_id}")
