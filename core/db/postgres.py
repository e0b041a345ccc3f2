"""``DatabaseAdapter`` on Postgres + pgvector, over a shared ``psycopg_pool`` pool.

Closing an adapter never closes the pool (an elizaOS bug): the pool belongs to the
process and is closed at shutdown only. No query here runs DDL: the schema is the
migrations' job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np
from pgvector import Vector
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from core.db.adapter import AgentRecord, EmbeddingRow, EmbeddingTarget
from core.errors import EmbeddingDimensionError
from core.types import Content, Entity, Memory, MemoryMetadata, Room, World

_MEMORY_COLUMNS = "m.id, m.agent_id, m.room_id, m.world_id, m.entity_id, m.content, m.metadata, m.created_at"


class PostgresAdapter:
    """Postgres implementation of ``core.db.adapter.DatabaseAdapter``.

    Args:
        pool: The process's open (or openable) pool; shared by every runtime.
        embedding_dimension: Length every vector must have (``EMBEDDING_DIMENSION``).
    """

    def __init__(self, pool: AsyncConnectionPool, *, embedding_dimension: int = 384) -> None:
        self.pool = pool
        self.embedding_dimension = embedding_dimension

    # -- agents ---------------------------------------------------------------------------

    async def upsert_agents(self, agents: Sequence[AgentRecord]) -> None:
        """Create or update agents by id, in one round trip."""
        async with self.pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO agents (id, name, character) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name, character = excluded.character,"
                " updated_at = now() WHERE agents.character IS DISTINCT FROM excluded.character",
                [(a.id, a.name, Jsonb(a.character)) for a in agents],
            )

    async def get_agents(self) -> list[AgentRecord]:
        """All enabled agents, by name."""
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute("SELECT id, name, character FROM agents WHERE enabled ORDER BY name")
            ).fetchall()
        return [AgentRecord(id=r["id"], name=r["name"], character=r["character"]) for r in rows]

    # -- connections: entity, world, room, participant ------------------------------------

    async def ensure_connection(self, entity: Entity, room: Room, world: World | None) -> None:
        """Create or update the world, room, entity and their participant row in one transaction.

        Entity names are merged (new names first, no duplicates); metadata is merged shallowly.
        """
        agent_id = room.agent_id
        async with self.pool.connection() as conn, conn.transaction(), conn.pipeline():
            if world is not None:
                await conn.execute(
                    "INSERT INTO worlds (agent_id, id, name, server_id, metadata) VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (agent_id, id) DO NOTHING",
                    (agent_id, world.id, world.name, world.server_id, Jsonb(world.metadata)),
                )
            await conn.execute(
                "INSERT INTO rooms (agent_id, id, world_id, name, source, type, channel_id, server_id, metadata)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (agent_id, id) DO NOTHING",
                (agent_id, room.id, room.world_id, room.name, room.source, room.type.value,
                 room.channel_id, room.server_id, Jsonb(room.metadata)),
            )
            await conn.execute(
                "INSERT INTO entities (agent_id, id, names, metadata) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (agent_id, id) DO UPDATE SET"
                "  names = ARRAY(SELECT DISTINCT unnest(excluded.names || entities.names)),"
                "  metadata = entities.metadata || excluded.metadata"
                " WHERE NOT (entities.names @> excluded.names AND entities.metadata @> excluded.metadata)",
                (agent_id, entity.id, entity.names, Jsonb(entity.metadata)),
            )
            await conn.execute(
                "INSERT INTO participants (agent_id, room_id, entity_id) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (agent_id, room.id, entity.id),
            )

    async def get_room(self, agent_id: UUID, room_id: UUID) -> Room | None:
        """The room, or ``None`` when this agent has no such room."""
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute("SELECT * FROM rooms WHERE agent_id = %s AND id = %s", (agent_id, room_id))
            ).fetchone()
        if row is None:
            return None
        row.pop("created_at")
        return Room.model_validate(row)

    async def get_entity_names(self, agent_id: UUID, entity_ids: Sequence[UUID]) -> dict[UUID, str]:
        """First known name of each entity that has one."""
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT id, names[1] AS name FROM entities"
                    " WHERE agent_id = %s AND id = ANY(%s) AND cardinality(names) > 0",
                    (agent_id, list(entity_ids)),
                )
            ).fetchall()
        return {r["id"]: r["name"] for r in rows}

    # -- memories -------------------------------------------------------------------------

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
                    f"SELECT {_MEMORY_COLUMNS} FROM memories m"
                    " WHERE m.agent_id = %s AND m.room_id = %s AND m.type = %s"
                    " ORDER BY m.created_at DESC, m.id DESC LIMIT %s",
                    (agent_id, room_id, table, count),
                )
            ).fetchall()
        return [_memory(r) for r in reversed(rows)]

    # -- embeddings -----------------------------------------------------------------------

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
            self._check_dimension(row.vector)
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
        self._check_dimension(embedding)
        query = Vector(np.asarray(embedding, dtype=np.float32))
        room_filter = "AND m.room_id = %(room)s" if room_id else ""
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    f"SELECT {_MEMORY_COLUMNS}, 1 - (e.dim_384 <=> %(q)s) AS similarity"
                    " FROM embeddings e JOIN memories m ON m.id = e.memory_id"
                    f" WHERE e.agent_id = %(agent)s AND m.type = %(table)s {room_filter}"
                    "   AND 1 - (e.dim_384 <=> %(q)s) >= %(threshold)s"
                    " ORDER BY e.dim_384 <=> %(q)s LIMIT %(count)s",
                    {"q": query, "agent": agent_id, "table": table, "room": room_id,
                     "threshold": match_threshold, "count": count},
                )
            ).fetchall()
        return [_memory(r) for r in rows]

    def _check_dimension(self, vector: Sequence[float]) -> None:
        if len(vector) != self.embedding_dimension:
            raise EmbeddingDimensionError(
                f"vector has {len(vector)} dimensions; EMBEDDING_DIMENSION is {self.embedding_dimension}"
            )


def _memory(row: dict[str, Any]) -> Memory:
    return Memory(
        id=row["id"],
        agent_id=row["agent_id"],
        room_id=row["room_id"],
        world_id=row["world_id"],
        entity_id=row["entity_id"],
        content=Content.model_validate(row["content"]),
        metadata=MemoryMetadata.model_validate(row["metadata"]),
        created_at=int(row["created_at"].timestamp() * 1000),
        similarity=row.get("similarity"),
    )
