"""Who a caller is, and the server's own secret: read once per container.

| setting | default | meaning |
|---|---|---|
| ``SERVER_SECRET`` | | 32+ characters known only to the server (DM room ids, the character-secrets key) |
| ``SERVER_SECRET_ARN`` | | Secrets Manager secret holding it (deployed; ``SERVER_SECRET`` wins) |
| ``AUTH_ADMIN_SCOPE`` | ``agents/admin`` | OAuth scope of the admin role |
| ``AUTH_ADMIN_GROUP`` | ``admin`` | ``cognito:groups`` / ``groups`` entry that also grants it |
| ``AUTH_CONNECTOR_SCOPE_PREFIX`` | ``agents/connector.`` | connector role; the rest names its source |

How a verified JWT maps to a caller is ``functions.api.identity``; docs/security.md has the whole model.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from core.settings.groups import SettingsGroup

#: Shortest accepted ``SERVER_SECRET``: 32 characters (a generated secret is 64 hex digits).
MIN_SERVER_SECRET_CHARS = 32


class IdentitySettings(SettingsGroup):
    """The identity settings (see the module docstring).

    Attributes:
        server_secret: The server's secret (``SERVER_SECRET``), at least 32 characters when set.
        server_secret_arn: Secrets Manager secret holding it (``SERVER_SECRET_ARN``).
        admin_scope: Scope of the admin role (``AUTH_ADMIN_SCOPE``).
        admin_group: Group of the admin role (``AUTH_ADMIN_GROUP``).
        connector_scope_prefix: Scope prefix of the connector role (``AUTH_CONNECTOR_SCOPE_PREFIX``).
    """

    server_secret: str = Field(default="", validation_alias="SERVER_SECRET", repr=False)
    server_secret_arn: str = Field(default="", validation_alias="SERVER_SECRET_ARN")
    admin_scope: str = Field(default="agents/admin", min_length=1, validation_alias="AUTH_ADMIN_SCOPE")
    admin_group: str = Field(default="admin", min_length=1, validation_alias="AUTH_ADMIN_GROUP")
    connector_scope_prefix: str = Field(
        default="agents/connector.", min_length=1, validation_alias="AUTH_CONNECTOR_SCOPE_PREFIX"
    )

    @field_validator("server_secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < MIN_SERVER_SECRET_CHARS:
            raise ValueError(f"must be at least {MIN_SERVER_SECRET_CHARS} characters (e.g. `openssl rand -hex 32`)")
        return value
