"""Memories: messages, documents, facts... scoped by agent and room."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from psycopg.types.json import Jsonb

from core.db.postgres.base import MEMORY_COLUMNS, PostgresBase, memory_from_row
from core.types import Memory


class MemoriesMixin(PostgresBase):
    async def create_memories(self, memories: Sequence[Memory], table: str) -> None:
        """Insert memories in one round trip (pipelined ``executemany``).

        Args:
            memories: Memories to store; ``embedding`` is ignored (vectors go through
                ``upsert_embeddings``).
            table: elizaOS table name (``"messages"``, ``"documents"``...), stored as ``type``.
        """
        params = [
            (m.id, m.agent_id, table, m.room_id, m.world_id, m.entity_id,
             Jsonb(m.content.to_json_dict()), Jsonb(m.metadata.to_json_dict()), m.content_hash, m.unique,
             datetime.fromtimestamp(m.created_at / 1000, UTC))
            for m in memories
        ]
        async with self.pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO memories (id, agent_id, type, room_id, world_id, entity_id, content, metadata,"
                " content_hash, \"unique\", created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                params,
            )

    async def get_memories(self, agent_id: UUID, room_id: UUID, table: str, count: int) -> list[Memory]:
        """The newest ``count`` memories of a room, returned oldest first (conversation order)."""
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT {MEMORY_COLUMNS} FROM memories m"
                    " WHERE m.agent_id = %s AND m.room_id = %s AND m.type = %s"
                    " ORDER BY m.created_at DESC, m.id DESC LIMIT %s",
                    (agent_id, room_id, table, count),
                )
            ).fetchall()
        return [memory_from_row(r) for r in reversed(rows)]
