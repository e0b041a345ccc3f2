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


class EmbeddingDimensionError(AgentRuntimeError):
    """A vector's length differs from the configured ``EMBEDDING_DIMENSION``."""


class MigrationError(AgentRuntimeError):
    """A migration failed, or an applied migration file was edited afterwards."""
