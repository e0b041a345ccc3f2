"""Character secrets encrypted at rest: AES-256-GCM under a key derived from the server's secret.

elizaOS encrypts character secrets with a salt (``SECRET_SALT``, AES-256-CBC in
``packages/core/src/settings.ts``); here the authenticated mode of the ``cryptography``
package is used, with the agent id as associated data, so a value copied into another agent's
row does not decrypt. The 96-bit nonce is synthetic (HMAC-SHA256 of agent and value, as in
SIV modes, RFC 5297): the same secret encrypts to the same text, so re-storing an unchanged
character is no change (``upsert_agents`` compares documents), at the cost of showing that
two stored values are equal. Stored values read
``enc:v1:<base64url(nonce || ciphertext || tag)>``; a value without the prefix is plain text
written before encryption existed, and is encrypted on the agent's next write.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from core.errors import ConfigurationError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: Prefix of an encrypted value (the version names the scheme, so it can change later).
PREFIX = "enc:v1:"
_NONCE_BYTES = 12


class SecretBox:
    """Encrypts and decrypts the string values of a character's ``secrets``.

    Args:
        key: 32 bytes (``ServerSecret.key("character_secrets")``).

    Raises:
        ValueError: ``key`` is not 32 bytes.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the key must be 32 bytes")
        self._key = key
        self._cipher: AESGCM | None = None
        self._nonce_key = hmac.new(key, b"nonce", hashlib.sha256).digest()

    @property
    def _aead(self) -> AESGCM:
        # Made on first use: cryptography's AES-GCM costs ~7 MiB of resident memory
        # (bench/memory_rss.py), and a function whose characters have no sealed secret never
        # encrypts or decrypts one (decrypt returns a plain value before this).
        if self._cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._cipher = AESGCM(self._key)
        return self._cipher

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def encrypt(self, agent_id: UUID, value: str) -> str:
        """``value`` encrypted for ``agent_id``; an already encrypted value is returned as is."""
        if value.startswith(PREFIX):
            return value
        nonce = hmac.new(self._nonce_key, agent_id.bytes + value.encode(), hashlib.sha256).digest()[:_NONCE_BYTES]
        sealed = self._aead.encrypt(nonce, value.encode(), agent_id.bytes)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, agent_id: UUID, value: str) -> str:
        """The plain text of ``value`` (a value without the prefix is returned as is).

        Raises:
            ConfigurationError: the value was encrypted under another key or for another agent
                (the server's secret changed), or is corrupt.
        """
        if not value.startswith(PREFIX):
            return value
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.urlsafe_b64decode(value[len(PREFIX) :])
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], agent_id.bytes).decode()
        except (InvalidTag, ValueError) as exc:
            raise ConfigurationError(
                f"a secret of agent {agent_id} cannot be decrypted: was SERVER_SECRET changed?"
            ) from exc

    def seal_character(self, agent_id: UUID, character: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of a character document with every string secret encrypted."""
        return self._map_secrets(character, lambda v: self.encrypt(agent_id, v))

    def open_character(self, agent_id: UUID, character: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of a stored character document with its secrets decrypted."""
        return self._map_secrets(character, lambda v: self.decrypt(agent_id, v))

    @staticmethod
    def _map_secrets(character: Mapping[str, Any], change: Any) -> dict[str, Any]:
        document = dict(character)
        secrets = document.get("secrets")
        if isinstance(secrets, Mapping):
            document["secrets"] = {k: change(v) if isinstance(v, str) else v for k, v in secrets.items()}
        return document
