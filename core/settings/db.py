"""Database settings: where the database is, how the pool uses it, and how transient errors are retried.

Every ``DATABASE_*``, ``DB_POOL_*`` and ``DB_RETRY_*`` variable is named here and nowhere
else. They are read once, in the init phase, by ``core.settings.load_settings`` (the one rule):
``DatabaseSettings`` is given to ``core.db.pool.create_pool`` (the process ``Settings`` inherits
its fields), ``RetrySettings`` is what ``core.db.retry.RetryPolicy`` is made of.

| variable | default | meaning |
|---|---|---|
| ``DATABASE_URL`` | | libpq URI of the database; wins over the secret |
| ``DATABASE_SECRET_ARN`` | | Secrets Manager secret in the RDS format (``core.db.credentials``) |
| ``DATABASE_HOST`` | | host overriding the secret's, e.g. an RDS Proxy endpoint |
| ``DATABASE_NAME`` | | database overriding the secret's |
| ``DATABASE_SSLMODE`` | ``verify-full`` | libpq ``sslmode`` with a secret: certificate and host name checked |
| ``DATABASE_SSLROOTCERT`` | the RDS CA bundle | CA certificates for ``verify-ca``/``verify-full`` (``core/db/certs``) |
| ``DATABASE_SECRET_MAX_AGE_S`` | ``300`` | seconds the secret is cached (a rotated password is seen after that) |
| ``DB_POOL_MIN_SIZE`` | ``0`` | connections kept open (none while a Lambda container is frozen) |
| ``DB_POOL_MAX_SIZE`` | ``1`` | most connections per process (a Lambda runs one event at a time) |
| ``DB_POOL_TIMEOUT_S`` | ``10`` | seconds to wait for a pooled connection (> 0) |
| ``DB_POOL_CHECK_AFTER_S`` | ``1`` | a connection idle longer than this (s) is checked before use (``core.db.pool``) |
| ``DB_RETRY_ATTEMPTS`` | ``3`` | runs in all, the first included (``1`` disables retries) |
| ``DB_RETRY_BASE_DELAY_MS`` | ``50`` | backoff cap before the first retry (ms), doubled for each next one |
| ``DB_RETRY_MAX_DELAY_MS`` | ``1000`` | largest backoff cap (ms), at least the base |
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from core.settings.groups import SettingsGroup

#: Amazon RDS's and RDS Proxy's certificate authorities (see the file's header for its source).
RDS_CA_BUNDLE = Path(__file__).resolve().parents[1] / "db" / "certs" / "rds-ca-bundle.pem"
#: libpq's ``sslmode`` values.
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class DatabaseSettings(SettingsGroup):
    """Where the database is and how the process's pool uses it (the module's table).

    Attributes:
        database_url: libpq URI (``DATABASE_URL``); when empty, the secret is used.
        database_secret_arn: Secrets Manager secret with the credentials (``DATABASE_SECRET_ARN``).
        database_host: Host overriding the secret's (``DATABASE_HOST``).
        database_name: Database overriding the secret's (``DATABASE_NAME``).
        database_sslmode: libpq ``sslmode`` with a secret (``DATABASE_SSLMODE``), one of ``SSLMODES``.
        database_sslrootcert: CA bundle (a PEM file) the server's certificate must chain to
            (``DATABASE_SSLROOTCERT``); Amazon RDS's and RDS Proxy's, shipped in the package, by default.
        database_secret_max_age_s: Seconds the secret is cached (``DATABASE_SECRET_MAX_AGE_S``).
        pool_min_size: Connections kept open (``DB_POOL_MIN_SIZE``; 0 in Lambda).
        pool_max_size: Most connections per process (``DB_POOL_MAX_SIZE``; 1 in Lambda).
        pool_timeout_s: Seconds to wait for a pooled connection (``DB_POOL_TIMEOUT_S``).
        pool_check_after_s: Idle seconds after which a connection is checked before use
            (``DB_POOL_CHECK_AFTER_S``).
    """

    database_url: str = Field(default="", validation_alias="DATABASE_URL")
    database_secret_arn: str = Field(default="", validation_alias="DATABASE_SECRET_ARN")
    database_host: str = Field(default="", validation_alias="DATABASE_HOST")
    database_name: str = Field(default="", validation_alias="DATABASE_NAME")
    database_sslmode: str = Field(
        default="verify-full", pattern=f"^({'|'.join(SSLMODES)})$", validation_alias="DATABASE_SSLMODE"
    )
    database_sslrootcert: str = Field(default=str(RDS_CA_BUNDLE), validation_alias="DATABASE_SSLROOTCERT")
    database_secret_max_age_s: int = Field(default=300, ge=0, validation_alias="DATABASE_SECRET_MAX_AGE_S")
    pool_min_size: int = Field(default=0, ge=0, validation_alias="DB_POOL_MIN_SIZE")
    pool_max_size: int = Field(default=1, ge=1, validation_alias="DB_POOL_MAX_SIZE")
    pool_timeout_s: float = Field(default=10.0, gt=0, validation_alias="DB_POOL_TIMEOUT_S")
    pool_check_after_s: float = Field(default=1.0, ge=0, validation_alias="DB_POOL_CHECK_AFTER_S")

    @model_validator(mode="after")
    def _pool_sizes_ordered(self) -> Self:
        if self.pool_max_size < self.pool_min_size:
            raise ValueError(
                f"DB_POOL_MAX_SIZE: must be at least DB_POOL_MIN_SIZE ({self.pool_min_size}), got {self.pool_max_size}"
            )
        return self


class RetrySettings(SettingsGroup):
    """How often and how patiently transient database failures are retried (``core.db.retry``).

    Attributes:
        attempts: Runs in all, the first included (``DB_RETRY_ATTEMPTS``; 1 disables retries).
        base_delay_ms: Backoff cap before the first retry, in ms (``DB_RETRY_BASE_DELAY_MS``).
        max_delay_ms: Largest backoff cap, in ms (``DB_RETRY_MAX_DELAY_MS``).
    """

    attempts: int = Field(default=3, ge=1, validation_alias="DB_RETRY_ATTEMPTS")
    base_delay_ms: float = Field(default=50.0, ge=0, validation_alias="DB_RETRY_BASE_DELAY_MS")
    max_delay_ms: float = Field(default=1000.0, ge=0, validation_alias="DB_RETRY_MAX_DELAY_MS")

    @model_validator(mode="after")
    def _delays_ordered(self) -> Self:
        if self.max_delay_ms < self.base_delay_ms:
            raise ValueError(
                f"DB_RETRY_MAX_DELAY_MS: must be at least DB_RETRY_BASE_DELAY_MS"
                f" ({self.base_delay_ms:g}), got {self.max_delay_ms:g}"
            )
        return self
