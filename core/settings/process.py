"""The process settings: everything a container needs to start, read once in the init phase.

A module of its own, re-exported as ``core.settings.Settings``: it builds on the area groups
(``core.settings.db``), which build on the rule defined in ``core.settings`` itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import Field, ValidationError, field_validator

from core.errors import ConfigurationError
from core.settings.db import DatabaseSettings
from core.settings.groups import describe_errors


class Settings(DatabaseSettings):
    """Everything a container needs to start, from environment variables.

    The database and pool fields (``database_url``, ``pool_max_size``...) are those of
    ``core.settings.db.DatabaseSettings``, read there; a ``Settings`` is a ``DatabaseSettings``
    (``core.db.pool.create_pool`` takes either).

    Attributes:
        embedding_dimension: Vector length of the embedding model (``EMBEDDING_DIMENSION``),
            a setting so start-up never calls the model to find out; one of
            ``core.db.adapter.EMBEDDING_DIMENSIONS`` (384, 512, 768, 1024, 1536, 3072).
        queue_urls: SQS queue URLs by priority (``EMBEDDINGS_{HIGH,NORMAL,LOW}_QUEUE_URL``).
        model_plugins: Import paths of the plugins serving models (``MODEL_PLUGINS``,
            comma-separated, ``module`` or ``module:attribute``).
        character_paths: Character files to load (``CHARACTERS``, comma-separated); the
            project's default character when empty.
        max_body_bytes: Largest accepted HTTP request body (``MAX_BODY_BYTES``, bytes).
    """

    embedding_dimension: int = Field(default=384, gt=0)
    queue_urls: dict[str, str] = {}
    model_plugins: list[str] = Field(default_factory=lambda: ["core.model_providers.local"])
    character_paths: list[str] = []
    max_body_bytes: int = Field(default=64 * 1024, gt=0)

    @field_validator("embedding_dimension")
    @classmethod
    def _supported_dimension(cls, value: int) -> int:
        # The schema has one vector column (and HNSW index) per supported dimension: any
        # other length could be stored nowhere, so refuse it at start-up, not per request.
        from core.db.adapter import EMBEDDING_DIMENSIONS  # lazy: `import core.runtime` needs no adapter types

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
            **DatabaseSettings.from_env(env).model_dump(),
            "queue_urls": {
                p: env[f"EMBEDDINGS_{p.upper()}_QUEUE_URL"]
                for p in ("high", "normal", "low")
                if env.get(f"EMBEDDINGS_{p.upper()}_QUEUE_URL")
            },
        }
        scalars = {
            "embedding_dimension": "EMBEDDING_DIMENSION",
            "max_body_bytes": "MAX_BODY_BYTES",
        }
        raw.update({field: env[var] for field, var in scalars.items() if env.get(var)})
        for field, var in (("model_plugins", "MODEL_PLUGINS"), ("character_paths", "CHARACTERS")):
            if env.get(var):
                raw[field] = [item.strip() for item in env[var].split(",") if item.strip()]
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigurationError(describe_errors(exc, {**scalars, "model_plugins": "MODEL_PLUGINS"})) from None
