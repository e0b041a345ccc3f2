"""Development tokens: the local stand-in for API Gateway's JWT authorizer.

Deployed, API Gateway verifies the caller's JWT against the issuer's keys and passes its claims
to the function (``requestContext.authorizer.jwt``). Locally there is no issuer, so the stack
is its own: it signs tokens with a key kept in its data directory (HS256, PyJWT) and its
gateway verifies them exactly as API Gateway would (signature, ``iss``, ``aud``, ``exp``), then
hands the same claims to the same handler code. A request without a valid token gets API
Gateway's ``401 {"message": "Unauthorized"}``.

``agent token`` mints one (``--admin``, ``--connector discord``, or a user by name); the
``agent`` commands that call the API mint their own. The data directory also keeps the
server's secret (``SERVER_SECRET``) for the stack and the CLI, made once with ``secrets``.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt

#: ``iss`` and ``aud`` of local tokens (deployed: the ``JwtIssuer`` and ``JwtAudience`` parameters).
ISSUER = "agent-runtime-local"
AUDIENCE = "agent-runtime-local"
#: Default lifetime of a minted token: 12 hours.
DEFAULT_TTL_S = 12 * 3600
_ALGORITHM = "HS256"
_SIGNING_KEY_FILE = "dev-token-key"
_SERVER_SECRET_FILE = "server-secret"


def _secret_file(directory: Path, name: str) -> str:
    """The contents of ``directory/name``, made with 32 random bytes (hex) on first use, mode 0600."""
    path = directory / name
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip()


def local_server_secret(directory: Path) -> str:
    """The local stack's ``SERVER_SECRET`` (made once, kept in the data directory)."""
    return _secret_file(directory, _SERVER_SECRET_FILE)


def use_local_server_secret(directory: Path) -> None:
    """Set ``SERVER_SECRET`` from the data directory unless the environment already sets one."""
    if not os.environ.get("SERVER_SECRET") and not os.environ.get("SERVER_SECRET_ARN"):
        os.environ["SERVER_SECRET"] = local_server_secret(directory)


class DevTokens:
    """Mints and verifies the local stack's tokens.

    Args:
        directory: The stack's data directory (the signing key lives there).
    """

    def __init__(self, directory: Path) -> None:
        self._key = _secret_file(directory, _SIGNING_KEY_FILE)

    def mint(
        self, subject: str, *, scopes: tuple[str, ...] = (), name: str | None = None, ttl_s: int = DEFAULT_TTL_S
    ) -> str:
        """A signed token for ``subject``.

        Args:
            subject: The ``sub`` claim (a user's id at the issuer).
            scopes: OAuth scopes (``agents/admin``, ``agents/connector.<source>``).
            name: The ``name`` claim (a display name), if any.
            ttl_s: Lifetime in seconds.
        """
        now = int(time.time())
        claims: dict[str, Any] = {"sub": subject, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl_s}
        if scopes:
            claims["scope"] = " ".join(scopes)
        if name:
            claims["name"] = name
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def authorize(self, headers: Mapping[str, str]) -> dict[str, Any] | None:
        """``requestContext.authorizer`` for a request, or ``None`` (401) without a valid bearer token.

        Args:
            headers: The request's headers, lowercase names.

        Returns:
            ``{"jwt": {"claims": {...}, "scopes": [...] | None}}`` with claim values as strings,
            as API Gateway's payload 2.0 carries them.
        """
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            claims = jwt.decode(
                token.strip(),
                self._key,
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["sub", "exp"]},
            )
        except jwt.PyJWTError:
            return None
        scopes = str(claims.get("scope", "")).split()
        return {"jwt": {"claims": {k: str(v) for k, v in claims.items()}, "scopes": scopes or None}}
