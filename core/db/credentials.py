"""Where the database connection comes from: ``DATABASE_URL``, or a Secrets Manager secret.

In AWS the password never sits in an environment variable: ``DATABASE_SECRET_ARN`` names a
secret in the RDS format (``{"username", "password", "host", "port", "dbname"}``), read
through Powertools' ``SecretsProvider`` and cached for ``DATABASE_SECRET_MAX_AGE_S``.
``DATABASE_HOST`` (an RDS Proxy endpoint, typically) and ``DATABASE_NAME`` override the
secret's host and database. The pool resolves the connection string for every new
connection, so a rotated password is picked up once the cache expires.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from psycopg.conninfo import make_conninfo

from core import aws
from core.errors import ConfigurationError
from core.settings.db import DatabaseSettings

#: Seconds a new connection may take before failing (an unreachable database fails fast).
CONNECT_TIMEOUT_S = 10


class SecretsSource(Protocol):
    """Reads a secret and caches it (Powertools' ``SecretsProvider`` is one).

    The cache belongs to the object: a process keeps one for its pool's life, a test makes its own.
    """

    def get(self, name: str, *, max_age: int | None = None, transform: Any = None) -> Any:
        """The secret ``name``, from the cache when younger than ``max_age`` seconds (``transform="json"``: parsed)."""
        ...


class SecretConninfo:
    """A callable returning a libpq conninfo string built from a Secrets Manager secret.

    Args:
        settings: ``database_secret_arn`` (required), ``database_host``, ``database_name``,
            ``database_sslmode``, ``database_secret_max_age_s``.
        provider: Where the secret is read and cached; a Powertools ``SecretsProvider`` on the
            process's Secrets Manager client when not given.
    """

    def __init__(self, settings: DatabaseSettings, provider: SecretsSource | None = None) -> None:
        self.settings = settings
        self.provider = provider or _powertools_provider()

    def __call__(self) -> str:
        """The conninfo for a new connection.

        Raises:
            ConfigurationError: the secret is not JSON or lacks a field (named; no value is
                ever put in the message).
        """
        s = self.settings
        secret = self.provider.get(s.database_secret_arn, transform="json", max_age=s.database_secret_max_age_s)
        if not isinstance(secret, dict):
            raise ConfigurationError("DATABASE_SECRET_ARN: the secret is not a JSON object")
        missing = [k for k in ("username", "password") if k not in secret]
        host = s.database_host or secret.get("host")
        if not host:
            missing.append("host (or DATABASE_HOST)")
        if missing:
            raise ConfigurationError(f"DATABASE_SECRET_ARN: the secret has no {', '.join(missing)}")
        return make_conninfo(
            host=host,
            port=str(secret.get("port") or 5432),
            dbname=s.database_name or secret.get("dbname") or "postgres",
            user=secret["username"],
            password=secret["password"],
            sslmode=s.database_sslmode,
            connect_timeout=str(CONNECT_TIMEOUT_S),
            # Only the verifying modes read it; libpq would refuse a missing file even for "require".
            **({"sslrootcert": s.database_sslrootcert} if s.database_sslmode.startswith("verify") else {}),
        )


def database_conninfo(settings: DatabaseSettings, secrets: SecretsSource | None = None) -> str | Callable[[], str]:
    """What the pool connects with: ``DATABASE_URL`` as is, or a ``SecretConninfo``.

    Args:
        settings: The database settings (a process ``Settings`` is one).
        secrets: Where the secret is read and cached (see ``SecretConninfo``).

    Raises:
        ConfigurationError: neither ``DATABASE_URL`` nor ``DATABASE_SECRET_ARN`` is set.
    """
    if settings.database_url:
        return settings.database_url
    if settings.database_secret_arn:
        return SecretConninfo(settings, secrets)
    raise ConfigurationError("set DATABASE_URL, or DATABASE_SECRET_ARN (with DATABASE_HOST / DATABASE_NAME)")


def _powertools_provider() -> SecretsSource:
    # Imported here: only a process configured with a secret pays for Powertools' parameters.
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    provider: SecretsSource = SecretsProvider(boto3_client=aws.client("secretsmanager"))
    return provider
