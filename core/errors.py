"""Typed errors of the runtime library. HTTP handlers map them to status codes."""

from __future__ import annotations


class AgentRuntimeError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigurationError(AgentRuntimeError):
    """A setting is missing or invalid (raised in the init phase, never per request)."""


class NotFoundError(AgentRuntimeError):
    """An agent, room or memory that the caller named does not exist (HTTP 404)."""


class ModelNotFoundError(AgentRuntimeError):
    """No handler is registered for a model type (or for the provider asked for)."""


class ModelError(AgentRuntimeError):
    """A model call failed.

    Attributes:
        retryable: True for failures another provider or a later call may not have
            (timeouts, HTTP 429 and 5xx); False for bad requests.
        provider: Name of the provider that failed.
    """

    def __init__(self, message: str, *, provider: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.provider = provider
        self.retryable = retryable


class StructuredOutputError(ModelError):
    """A model's answer did not give a valid object, even after the repair attempt (``get_object``).

    Not retryable: the call was already retried once with the validation errors.

    Attributes:
        schema_name: The pydantic model asked for.
        errors: What was wrong with the last answer (one line per problem).
        raw: The last answer, as text (for debugging; may quote the prompt).
    """

    def __init__(self, message: str, *, schema_name: str, errors: list[str], raw: str, provider: str = "") -> None:
        super().__init__(message, provider=provider, retryable=False)
        self.schema_name = schema_name
        self.errors = errors
        self.raw = raw


class EmbeddingDimensionError(AgentRuntimeError):
    """A vector's length differs from the configured ``EMBEDDING_DIMENSION``."""


class MigrationError(AgentRuntimeError):
    """A migration failed, or an applied migration file was edited afterwards."""


class DatabaseError(AgentRuntimeError):
    """A database operation failed (HTTP 500).

    The message names the operation, the error class and the SQLSTATE, plus constraint or
    table names when the server gave them; never the statement's parameters (which hold
    user content) nor the server's DETAIL line (which may quote them).

    Attributes:
        sqlstate: Five-character SQLSTATE (``"23505"``), or ``None`` for a client-side
            failure (lost connection, pool timeout).
        operation: The adapter method that failed (``"create_memories"``).
    """

    def __init__(self, message: str, *, sqlstate: str | None = None, operation: str = "") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.operation = operation


class TransientDatabaseError(DatabaseError):
    """A transient failure that retries did not overcome, or that was not safe to retry (HTTP 503).

    Attributes:
        attempts: How many times the operation ran (1 when it was not retried).
        outcome_unknown: True when the connection was lost while a write may have been
            committing: the write may or may not have been applied, so the caller must not
            assume either (re-reading, or an idempotent retry, tells).
    """

    def __init__(
        self,
        message: str,
        *,
        sqlstate: str | None = None,
        operation: str = "",
        attempts: int = 1,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message, sqlstate=sqlstate, operation=operation)
        self.attempts = attempts
        self.outcome_unknown = outcome_unknown
