"""The server's secret, and the keys derived from it.

One secret known only to the deployment (``SERVER_SECRET``, or the Secrets Manager secret
``SERVER_SECRET_ARN`` that ``template.yaml`` generates) gives each use its own key, derived
with HMAC-SHA256 under a label (the "expand" step of HKDF, RFC 5869, with a key already
uniformly random), so one leaked derived key exposes nothing else:

* ``dm_room``: direct-message room ids (``Orchestrator``). elizaOS derives them from the agent
  and user ids alone, which are public here; with the key nobody can compute another user's room.
* ``character_secrets``: the AES-256-GCM key of character secrets at rest (``core.secret_box``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from core.errors import ConfigurationError
from core.settings.identity import MIN_SERVER_SECRET_CHARS, IdentitySettings


class ServerSecret:
    """The deployment's secret; hands out derived keys, never itself.

    Args:
        secret: At least 32 characters.

    Raises:
        ConfigurationError: ``secret`` is shorter.
    """

    def __init__(self, secret: str) -> None:
        if len(secret) < MIN_SERVER_SECRET_CHARS:
            raise ConfigurationError(f"SERVER_SECRET must be at least {MIN_SERVER_SECRET_CHARS} characters")
        self._secret = secret.encode()

    def __repr__(self) -> str:
        return "ServerSecret(<hidden>)"

    def key(self, label: str) -> bytes:
        """The 32-byte key for ``label`` (``"dm_room"``, ``"character_secrets"``)."""
        return hmac.new(self._secret, b"agent-runtime/" + label.encode(), hashlib.sha256).digest()

    @classmethod
    def load(cls, settings: IdentitySettings, secrets_client: Any = None) -> ServerSecret:
        """The secret from ``SERVER_SECRET``, else from the Secrets Manager secret ``SERVER_SECRET_ARN``.

        A secret string that is a JSON object gives its ``secret`` member (the shape the template's
        ``GenerateSecretString`` writes); any other string is the secret itself.

        Args:
            settings: The identity settings.
            secrets_client: A ``secretsmanager`` boto3 client (one call, in the init phase).

        Raises:
            ConfigurationError: neither is set, the secret cannot be read, or it is too short.
        """
        if settings.server_secret:
            return cls(settings.server_secret)
        if not settings.server_secret_arn:
            raise ConfigurationError(
                "SERVER_SECRET (32+ characters, e.g. `openssl rand -hex 32`) or SERVER_SECRET_ARN must be set"
            )
        if secrets_client is None:
            raise ConfigurationError("SERVER_SECRET_ARN is set but no Secrets Manager client was given")
        try:
            value = secrets_client.get_secret_value(SecretId=settings.server_secret_arn)["SecretString"]
        except Exception as exc:  # botocore's ClientError and connection errors alike
            raise ConfigurationError(f"SERVER_SECRET_ARN cannot be read: {exc}") from exc
        return cls(_secret_member(value))


def _secret_member(value: str) -> str:
    try:
        document = json.loads(value)
    except ValueError:
        return value
    if isinstance(document, dict) and isinstance(document.get("secret"), str):
        return str(document["secret"])
    return value
