"""Embeddings: vectors stored beside memories, written by the worker, searched by cosine."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import numpy as np
from pgvector import Vector

from core.db.adapter import EmbeddingRow, EmbeddingTarget
from core.db.postgres.base import MEMORY_COLUMNS, PostgresBase, memory_from_row
from core.types import Memory


class EmbeddingsMixin(PostgresBase):
    async def get_embedding_targets(self, memory_ids: Sequence[UUID]) -> list[EmbeddingTarget]:
        """Current text and embedding state of the memories that still exist."""
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT m.id, m.agent_id, coalesce(m.content->>'text', '') AS text, m.content_hash,"
                    " e.content_hash AS embedded_hash"
                    " FROM memories m LEFT JOIN embeddings e ON e.memory_id = m.id WHERE m.id = ANY(%s)",
                    (list(memory_ids),),
                )
            ).fetchall()
        return [
            EmbeddingTarget(
                memory_id=r["id"], agent_id=r["agent_id"], text=r["text"],
                content_hash=r["content_hash"], embedded_hash=r["embedded_hash"],
            )
            for r in rows
        ]

    async def upsert_embeddings(self, rows: Sequence[EmbeddingRow]) -> int:
        """Store vectors in one round trip; a vector for text that changed since is not written.

        Returns:
            Number of rows written.

        Raises:
            EmbeddingDimensionError: a vector's length is not ``embedding_dimension``
                (nothing is written).
        """
        for row in rows:
            self.check_dimension(row.vector)
        if not rows:
            return 0
        async with self.pool.connection() as conn, conn.cursor() as cur:
            # One statement for the whole batch: unnest() the columns, and join memories so
            # a vector whose memory was deleted or edited meanwhile is silently not stored.
            await cur.execute(
                "INSERT INTO embeddings (memory_id, agent_id, content_hash, model, dim_384)"
                " SELECT b.memory_id, b.agent_id, b.content_hash, b.model, b.vec"
                " FROM unnest(%s::uuid[], %s::uuid[], %s::text[], %s::text[], %s::vector[])"
                "   AS b(memory_id, agent_id, content_hash, model, vec)"
                " JOIN memories m ON m.id = b.memory_id AND m.content_hash = b.content_hash"
                " ON CONFLICT (memory_id) DO UPDATE SET content_hash = excluded.content_hash,"
                "   model = excluded.model, dim_384 = excluded.dim_384, created_at = now()",
                (
                    [r.memory_id for r in rows], [r.agent_id for r in rows],
                    [r.content_hash for r in rows], [r.model for r in rows],
                    [Vector(np.asarray(r.vector, dtype=np.float32)) for r in rows],
                ),
            )
            return cur.rowcount

    async def search_memories(
        self,
        agent_id: UUID,
        embedding: Sequence[float],
        *,
        table: str,
        room_id: UUID | None = None,
        count: int = 10,
        match_threshold: float = 0.0,
    ) -> list[Memory]:
        """Memories of one agent most similar to ``embedding`` (cosine), best first.

        Args:
            agent_id: Only this agent's memories are searched.
            embedding: Query vector of length ``embedding_dimension``.
            table: elizaOS table name to search (``"messages"``...).
            room_id: Restrict to one room.
            count: Most results.
            match_threshold: Least similarity (``1 - cosine distance``) a result must have.

        Returns:
            Memories with ``similarity`` set.

        Raises:
            EmbeddingDimensionError: the query vector has the wrong length.
        """
        self.check_dimension(embedding)
        query = Vector(np.asarray(embedding, dtype=np.float32))
        room_filter = "AND m.room_id = %(room)s" if room_id else ""
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT {MEMORY_COLUMNS}, 1 - (e.dim_384 <=> %(q)s) AS similarity"
                    " FROM embeddings e JOIN memories m ON m.id = e.memory_id"
                    f" WHERE e.agent_id = %(agent)s AND m.type = %(table)s {room_filter}"
                    "   AND 1 - (e.dim_384 <=> %(q)s) >= %(threshold)s"
                    " ORDER BY e.dim_384 <=> %(q)s LIMIT %(count)s",
                    {"q": query, "agent": agent_id, "table": table, "room": room_id,
                     "threshold": match_threshold, "count": count},
                )
            ).fetchall()
        return [memory_from_row(r) for r in rows]
