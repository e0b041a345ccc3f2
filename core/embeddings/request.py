"""The SQS message body of one embedding request."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

Priority = Literal["high", "normal", "low"]
PRIORITIES: tuple[Priority, ...] = ("high", "normal", "low")


class EmbeddingRequest(BaseModel):
    """Ask the worker to embed one memory. Carries ids and a hash, never the text or a secret.

    JSON keys are camelCase (``memoryId``...), like every other wire format here.

    Attributes:
        memory_id: The memory to embed.
        agent_id: Its agent.
        content_hash: SHA-256 of the text when queued: a request for text that has changed
            since is stale and skipped.
        priority: The queue it went to.
        dimension: Vector length expected (``EMBEDDING_DIMENSION``).
    """

    # defer_build: the validator is built on first use, not at import (building the first validator
    # imports pydantic's plugin loader, and with it importlib.metadata; SnapStart builds it before its snapshot)
    model_config = ConfigDict(
        extra="ignore", frozen=True, alias_generator=to_camel, populate_by_name=True, defer_build=True
    )

    memory_id: UUID
    agent_id: UUID
    content_hash: str
    priority: Priority = "normal"
    dimension: int = 384
