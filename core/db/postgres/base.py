"""Shared state and helpers of the Postgres adapter's parts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from core.db.postgres.values import to_ms
from core.errors import EmbeddingDimensionError
from core.types import Content, Memory, MemoryMetadata

#: Columns every memory query selects (alias ``m``), in the order ``memory_from_row`` reads.
MEMORY_COLUMNS = "m.id, m.agent_id, m.room_id, m.world_id, m.entity_id, m.content, m.metadata, m.created_at"


class PostgresBase:
    """The pool and settings every part of ``PostgresAdapter`` uses.

    Args:
        pool: The process's pool; shared by every runtime and never closed by the adapter.
        embedding_dimension: Length every vector must have (``EMBEDDING_DIMENSION``).
    """

    def __init__(self, pool: AsyncConnectionPool, *, embedding_dimension: int = 384) -> None:
        self.pool = pool
        self.embedding_dimension = embedding_dimension

    def check_dimension(self, vector: Sequence[float]) -> None:
        """Raises ``EmbeddingDimensionError`` when ``vector`` is not ``embedding_dimension`` long."""
        if len(vector) != self.embedding_dimension:
            raise EmbeddingDimensionError(
                f"vector has {len(vector)} dimensions; EMBEDDING_DIMENSION is {self.embedding_dimension}"
            )


def memory_from_row(row: dict[str, Any]) -> Memory:
    """A ``Memory`` from a row selected with ``MEMORY_COLUMNS`` (plus an optional ``similarity``)."""
    return Memory(
        id=row["id"],
        agent_id=row["agent_id"],
        room_id=row["room_id"],
        world_id=row["world_id"],
        entity_id=row["entity_id"],
        content=Content.model_validate(row["content"]),
        metadata=MemoryMetadata.model_validate(row["metadata"]),
        created_at=to_ms(row["created_at"]),
        similarity=row.get("similarity"),
    )
