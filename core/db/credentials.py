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
from typing import Any

from psycopg.conninfo import make_conninfo

from core import aws
from core.errors import ConfigurationError
from core.settings import Settings

#: Seconds a new connection may take before failing (an unreachable database fails fast).
CONNECT_TIMEOUT_S = 10


class SecretConninfo:
    """A callable returning a libpq conninfo string built from a Secrets Manager secret.

    Args:
        settings: ``database_secret_arn`` (required), ``database_host``, ``database_name``,
            ``database_sslmode``, ``database_secret_max_age_s``.
        provider: A Powertools ``SecretsProvider`` (one is made when not given).
    """

    def __init__(self, settings: Settings, provider: Any | None = None) -> None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider  # only where a secret is used

        self.settings = settings
        self.provider = provider or SecretsProvider(boto3_client=aws.client("secretsmanager"))

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
            host=host, port=str(secret.get("port") or 5432),
            dbname=s.database_name or secret.get("dbname") or "postgres",
            user=secret["username"], password=secret["password"], sslmode=s.database_sslmode,
            connect_timeout=str(CONNECT_TIMEOUT_S),
        )


def database_conninfo(settings: Settings) -> str | Callable[[], str]:
    """What the pool connects with: ``DATABASE_URL`` as is, or a ``SecretConninfo``.

    Raises:
        ConfigurationError: neither ``DATABASE_URL`` nor ``DATABASE_SECRET_ARN`` is set.
    """
    if settings.database_url:
        return settings.database_url
    if settings.database_secret_arn:
        return SecretConninfo(settings)
    raise ConfigurationError("set DATABASE_URL, or DATABASE_SECRET_ARN (with DATABASE_HOST / DATABASE_NAME)")
