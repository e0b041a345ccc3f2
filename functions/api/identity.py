"""Who is calling: the caller API Gateway's authorizer verified, never a body field.

Deployed, API Gateway's JWT authorizer checks the token (signature, issuer, audience, expiry)
and passes its claims in ``requestContext.authorizer.jwt`` (payload 2.0); locally the gateway
does the same with a development token (``infra.local.dev_tokens``), so one code path serves
both. Roles, from the verified claims (``core.settings.identity`` names them):

* **admin**: the scope ``AUTH_ADMIN_SCOPE`` (``agents/admin``) or the group ``AUTH_ADMIN_GROUP``
  (``cognito:groups``), or any IAM-signed call (``requestContext.authorizer.iam``: the
  deployer's own principals, which the API's resource policy admits). Manages agents,
  documents and tasks; may read any room and speak for anyone.
* **connector**: a scope ``AUTH_CONNECTOR_SCOPE_PREFIX<source>`` (``agents/connector.discord``),
  the client-credentials token of a trusted bridge to a chat platform, like an elizaOS client
  for Discord or Telegram. It speaks for its platform's users (``entityId`` in the body names
  the platform user, namespaced by the source) in rooms of its own source.
* **user**: anyone else with a valid token. Speaks as itself (``iss`` + ``sub``), in rooms it
  takes part in.

API Gateway hands array claims to the function as strings (``"[admin ops]"``): both forms are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from core.settings.identity import IdentitySettings
from core.uuid import string_to_uuid

#: A connector's source: what ``Room.source`` and ``Content.source`` hold (``discord``, ``telegram``).
SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
#: Claims that may carry a display name, in order of preference.
_NAME_CLAIMS = ("name", "preferred_username", "cognito:username", "username", "email")


class Role(StrEnum):
    """What a caller may do (module docstring)."""

    USER = "user"
    CONNECTOR = "connector"
    ADMIN = "admin"


@dataclass(frozen=True)
class Caller:
    """The verified caller of one request.

    Attributes:
        subject: Who it is, namespaced by who vouches for it: ``"<iss>|<sub>"`` for a JWT,
            ``"iam|<principal ARN>"`` for an IAM-signed call.
        role: What it may do.
        source: The platform it speaks for: a connector's source, else ``"api"``.
        name: A display name from the token, if any (a user's ``userName`` default).
    """

    subject: str
    role: Role
    source: str = "api"
    name: str | None = None

    @property
    def entity_key(self) -> UUID:
        """The caller's own id outside any agent (``create_unique_uuid`` makes it the agent's)."""
        return string_to_uuid(f"caller:{self.subject}")

    @property
    def is_admin(self) -> bool:
        """Whether the caller holds the admin role."""
        return self.role is Role.ADMIN

    def platform_entity(self, platform_user_id: UUID) -> UUID:
        """A connector's user's id outside any agent: the platform id namespaced by the source,
        so one connector cannot speak as another platform's users or as a token's user."""
        return string_to_uuid(f"{self.source}:{platform_user_id}")


def caller_from_event(event: Mapping[str, Any], settings: IdentitySettings) -> Caller | None:
    """The caller an API Gateway payload 2.0 event was authorised for, or ``None`` when unauthenticated.

    Args:
        event: The event; ``requestContext.authorizer`` holds ``jwt`` (``claims``, ``scopes``)
            or ``iam`` (``userArn``).
        settings: Scope and group names of the roles.

    Returns:
        The caller; ``None`` when the event carries no verified identity (no authorizer, a JWT
        without ``sub``), which the API answers with 401.
    """
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    if isinstance(authorizer.get("jwt"), Mapping):
        return _jwt_caller(authorizer["jwt"], settings)
    iam = authorizer.get("iam")
    if isinstance(iam, Mapping) and (iam.get("userArn") or iam.get("callerId")):
        return Caller(subject=f"iam|{iam.get('userArn') or iam.get('callerId')}", role=Role.ADMIN)
    return None


def _jwt_caller(jwt: Mapping[str, Any], settings: IdentitySettings) -> Caller | None:
    claims = jwt.get("claims") or {}
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        return None
    scopes = (
        set(_claim_list(jwt.get("scopes")))
        | set(_claim_list(claims.get("scope")))
        | set(_claim_list(claims.get("scp")))
    )
    groups = set(_claim_list(claims.get("cognito:groups"))) | set(_claim_list(claims.get("groups")))
    identity = f"{claims.get('iss', '')}|{subject}"
    name = next((str(claims[c]) for c in _NAME_CLAIMS if isinstance(claims.get(c), str) and claims[c]), None)
    if settings.admin_scope in scopes or settings.admin_group in groups:
        return Caller(subject=identity, role=Role.ADMIN, name=name)
    sources = sorted(
        s[len(settings.connector_scope_prefix) :] for s in scopes if s.startswith(settings.connector_scope_prefix)
    )
    if sources and SOURCE_PATTERN.match(sources[0]):
        return Caller(subject=identity, role=Role.CONNECTOR, source=sources[0], name=name)
    return Caller(subject=identity, role=Role.USER, name=name)


def _claim_list(value: Any) -> Iterable[str]:
    """A claim that lists values, in any form it arrives: a list, ``"a b"``, ``"[a b]"``, ``"a,b"``."""
    if isinstance(value, list):
        return [str(v) for v in value]
    if not isinstance(value, str):
        return []
    return [part for part in re.split(r"[\s,]+", value.strip().strip("[]")) if part]
