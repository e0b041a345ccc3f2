"""Entities, worlds, rooms and participants: where conversations happen."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from psycopg.types.json import Jsonb

from core.db.postgres.base import PostgresBase
from core.types import Entity, Room, World


class ConnectionsMixin(PostgresBase):
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
