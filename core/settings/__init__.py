"""Settings: process settings read once in the init phase, and the one rule every setting follows.

**The rule** (``parse_setting``), for a value from the environment or from a character's
``settings``/``secrets`` alike:

- unset, ``None`` or a blank string: the default;
- booleans: ``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off`` (any case);
- numbers: an ``int`` or ``float`` (a boolean is not a number), optionally within a range;
- anything else is a ``ConfigurationError`` whose message starts with the variable's name.

Process settings (``Settings.from_env``) are read once per container; per-agent settings
through ``AgentRuntime.setting(name, kind, default)``, which looks in the character's
``secrets``, then its ``settings``, then the runtime's settings, then the environment (elizaOS
``getSetting``) and applies the same rule.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, Field, field_validator

from core.db.adapter import EMBEDDING_DIMENSIONS
from core.errors import ConfigurationError

#: elizaOS's default for how many recent messages go into the prompt (``CONVERSATION_LENGTH``).
DEFAULT_CONVERSATION_LENGTH = 32


class Settings(BaseModel):
    """Everything a container needs to start, from environment variables.

    Attributes:
        database_url: libpq URI of the database (``DATABASE_URL``).
        database_secret_arn: Secrets Manager secret with the credentials, used when
            ``database_url`` is empty (``DATABASE_SECRET_ARN``; see ``core.db.credentials``).
        database_host: Host overriding the secret's, e.g. an RDS Proxy endpoint (``DATABASE_HOST``).
        database_name: Database overriding the secret's (``DATABASE_NAME``).
        database_sslmode: libpq ``sslmode`` with a secret (``DATABASE_SSLMODE``, ``require``).
        database_secret_max_age_s: Seconds the secret is cached (``DATABASE_SECRET_MAX_AGE_S``).
        pool_min_size: Connections kept open by the pool (``DB_POOL_MIN_SIZE``; 0 in Lambda).
        pool_max_size: Most connections per process (``DB_POOL_MAX_SIZE``; 1 in Lambda, which
            runs one event at a time per container).
        pool_timeout_s: Seconds to wait for a pooled connection (``DB_POOL_TIMEOUT_S``).
        pool_check_after_s: A connection idle longer than this (seconds) is checked before use
            (``DB_POOL_CHECK_AFTER_S``; see ``core.db.pool``).
        embedding_dimension: Vector length of the embedding model (``EMBEDDING_DIMENSION``),
            a setting so start-up never calls the model to find out; one of
            ``core.db.adapter.EMBEDDING_DIMENSIONS`` (384, 512, 768, 1024, 1536, 3072).
        queue_urls: SQS queue URLs by priority (``EMBEDDINGS_{HIGH,NORMAL,LOW}_QUEUE_URL``).
        model_plugins: Import paths of the plugins serving models (``MODEL_PLUGINS``,
            comma-separated, ``module`` or ``module:attribute``).
        character_paths: Character files to load (``CHARACTERS``, comma-separated); the
            project's default character when empty.
        conversation_length: Recent messages put into the prompt (``CONVERSATION_LENGTH``).
        max_body_bytes: Largest accepted HTTP request body (``MAX_BODY_BYTES``, bytes).
    """

    database_url: str = ""
    database_secret_arn: str = ""
    database_host: str = ""
    database_name: str = ""
    database_sslmode: str = Field(default="require", pattern="^(disable|allow|prefer|require|verify-ca|verify-full)$")
    database_secret_max_age_s: int = Field(default=300, ge=0)
    pool_min_size: int = Field(default=0, ge=0)
    pool_max_size: int = Field(default=1, ge=1)
    pool_timeout_s: float = Field(default=10.0, gt=0)
    pool_check_after_s: float = Field(default=1.0, ge=0)
    embedding_dimension: int = Field(default=384, gt=0)
    queue_urls: dict[str, str] = {}
    model_plugins: list[str] = Field(default_factory=lambda: ["core.model_providers.local"])
    character_paths: list[str] = []
    conversation_length: int = Field(default=DEFAULT_CONVERSATION_LENGTH, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)

    @field_validator("embedding_dimension")
    @classmethod
    def _supported_dimension(cls, value: int) -> int:
        # The schema has one vector column (and HNSW index) per supported dimension: any
        # other length could be stored nowhere, so refuse it at start-up, not per request.
        if value not in EMBEDDING_DIMENSIONS:
            raise ValueError(f"{value} is not supported; use one of {', '.join(map(str, EMBEDDING_DIMENSIONS))}")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (``os.environ`` by default).

        Raises:
            ConfigurationError: a value is malformed; the message names the variable.
        """
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {
            "database_url": env.get("DATABASE_URL", ""),
            "database_secret_arn": env.get("DATABASE_SECRET_ARN", ""),
            "database_host": env.get("DATABASE_HOST", ""),
            "database_name": env.get("DATABASE_NAME", ""),
            "queue_urls": {
                p: env[f"EMBEDDINGS_{p.upper()}_QUEUE_URL"]
                for p in ("high", "normal", "low")
                if env.get(f"EMBEDDINGS_{p.upper()}_QUEUE_URL")
            },
        }
        scalars = {
            "pool_min_size": "DB_POOL_MIN_SIZE",
            "pool_max_size": "DB_POOL_MAX_SIZE",
            "pool_timeout_s": "DB_POOL_TIMEOUT_S",
            "pool_check_after_s": "DB_POOL_CHECK_AFTER_S",
            "database_sslmode": "DATABASE_SSLMODE",
            "database_secret_max_age_s": "DATABASE_SECRET_MAX_AGE_S",
            "embedding_dimension": "EMBEDDING_DIMENSION",
            "conversation_length": "CONVERSATION_LENGTH",
            "max_body_bytes": "MAX_BODY_BYTES",
        }
        raw.update({field: env[var] for field, var in scalars.items() if env.get(var)})
        for field, var in (("model_plugins", "MODEL_PLUGINS"), ("character_paths", "CHARACTERS")):
            if env.get(var):
                raw[field] = [item.strip() for item in env[var].split(",") if item.strip()]
        try:
            return cls.model_validate(raw)
        except ValueError as exc:
            raise ConfigurationError(_describe(exc, {**scalars, "model_plugins": "MODEL_PLUGINS"})) from None


SettingT = TypeVar("SettingT", bool, int, float, str)

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def parse_setting(name: str, raw: object, kind: type[SettingT], default: SettingT, *,
                  minimum: float | None = None, maximum: float | None = None) -> SettingT:
    """Read one setting by the rule in the module docstring.

    Args:
        name: The variable's name, for the error message (``"PROVIDER_TIMEOUT_S"``).
        raw: What the source holds: a string from the environment, or any JSON value from a character.
        kind: ``bool``, ``int``, ``float`` or ``str``.
        default: Returned when ``raw`` is unset or blank.
        minimum: Smallest accepted number (inclusive), for ``int`` and ``float``.
        maximum: Largest accepted number (inclusive), for ``int`` and ``float``.

    Raises:
        ConfigurationError: ``raw`` is not a ``kind`` or is out of range; the message names ``name``.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return default
    text = raw.strip() if isinstance(raw, str) else raw
    if kind is bool:
        return _parse_bool(name, text)  # type: ignore[return-value]
    if kind is str:
        return str(text)  # type: ignore[return-value]
    return _parse_number(name, text, kind, minimum, maximum)  # type: ignore[return-value]


def _parse_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in _TRUE:
        return True
    if str(value).lower() in _FALSE:
        return False
    raise ConfigurationError(f"{name}: must be true or false, got {value!r}")


def _parse_number(name: str, value: object, kind: type, minimum: float | None, maximum: float | None) -> float:
    noun = "an integer" if kind is int else "a number"
    if isinstance(value, bool):
        raise ConfigurationError(f"{name}: must be {noun}, got {value!r}")
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name}: must be {noun}, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):  # NaN and infinities are no setting
        raise ConfigurationError(f"{name}: must be a finite number, got {value!r}")
    if minimum is not None and number < minimum:
        raise ConfigurationError(f"{name}: must be at least {minimum:g}, got {number!r}")
    if maximum is not None and number > maximum:
        raise ConfigurationError(f"{name}: must be at most {maximum:g}, got {number!r}")
    return number


def _describe(exc: ValueError, names: dict[str, str]) -> str:
    errors = getattr(exc, "errors", lambda: [])()
    parts = [f"{names.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}" for e in errors if e.get("loc")]
    return "invalid settings: " + ("; ".join(parts) or str(exc))
