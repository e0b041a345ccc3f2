"""Entities, worlds, rooms and participants: where conversations happen.

Entity names and metadata are merged by two SQL functions of migration 0002:
``text_array_union(new, stored)`` (newest first, no duplicates) and
``jsonb_merge_per_key(stored, new)`` (per source key: inner objects merge, newest wins).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from psycopg.abc import Params
from psycopg.errors import ForeignKeyViolation
from psycopg.types.json import Jsonb

from core.db.adapter import ConnectionWrite, ParticipantRecord, ParticipantUserState, RoomAccess
from core.db.postgres.base import PostgresBase, Query, in_one_round_trip
from core.db.postgres.components import COMPONENT_JSON
from core.db.retry import idempotent
from core.types import Component, Entity, Room, World

_ENTITY_COLUMNS = "e.id, e.agent_id, e.names, e.metadata"
_WORLD_COLUMNS = "agent_id, id, name, server_id, metadata"
_ROOM_COLUMNS = "agent_id, id, world_id, name, source, type, channel_id, server_id, metadata"
_MS = "(extract(epoch FROM {}) * 1000)::bigint"


def _entity_from_row(row: Mapping[str, Any]) -> Entity:
    # ``Entity`` has no declared ``components`` field yet (elizaOS ``Entity.components``): it is
    # an extra attribute, dumped with the entity, present only when the query loaded them.
    extra = (
        {}
        if row.get("components") is None
        else {"components": [Component.model_validate(c) for c in row["components"]]}
    )
    return Entity(id=row["id"], agent_id=row["agent_id"], names=row["names"], metadata=row["metadata"], **extra)


def _user_state(state: ParticipantUserState | str | None) -> ParticipantUserState | None:
    """``state`` as the enum; ``ValueError`` for anything but FOLLOWED, MUTED or ``None``."""
    if state is None:
        return None
    if not isinstance(state, str):
        raise ValueError(f"participant state must be FOLLOWED, MUTED or None, not {state!r}")
    return ParticipantUserState(state)


def _insert_world(agent_id: UUID, world: World) -> tuple[str, tuple[Any, ...]]:
    return (
        "INSERT INTO worlds (agent_id, id, name, server_id, metadata) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (agent_id, id) DO NOTHING RETURNING true AS created",
        (agent_id, world.id, world.name, world.server_id, Jsonb(world.metadata)),
    )


def _insert_room(room: Room) -> tuple[str, tuple[Any, ...]]:
    return (
        "INSERT INTO rooms (agent_id, id, world_id, name, source, type, channel_id, server_id, metadata)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (agent_id, id) DO NOTHING RETURNING true AS created",
        (
            room.agent_id,
            room.id,
            room.world_id,
            room.name,
            room.source,
            room.type.value,
            room.channel_id,
            room.server_id,
            Jsonb(room.metadata),
        ),
    )


def _upsert_entity(agent_id: UUID, entity: Entity) -> tuple[str, dict[str, Any]]:
    # RETURNING gives a row for an insert (xmax = 0) or a changing merge; none when nothing changed.
    return (
        "INSERT INTO entities (agent_id, id, names, metadata)"
        " VALUES (%(a)s, %(e)s, text_array_union(%(n)s::text[], NULL), %(m)s)"
        " ON CONFLICT (agent_id, id) DO UPDATE SET"
        "  names = text_array_union(excluded.names, entities.names),"
        "  metadata = jsonb_merge_per_key(entities.metadata, excluded.metadata)"
        " WHERE (entities.names, entities.metadata) IS DISTINCT FROM"
        "  (text_array_union(excluded.names, entities.names),"
        "   jsonb_merge_per_key(entities.metadata, excluded.metadata))"
        " RETURNING (xmax = 0) AS created",
        {"a": agent_id, "e": entity.id, "n": entity.names, "m": Jsonb(entity.metadata)},
    )


class ConnectionsMixin(PostgresBase):
    # -- the per-turn upsert ------------------------------------------------------------------

    async def ensure_connection(self, entity: Entity, room: Room, world: World | None) -> ConnectionWrite:
        """Create or update the world, room, entity and their participant row in one transaction.

        The four statements and the transaction's BEGIN and COMMIT are one round trip
        (``in_one_round_trip``); each says with ``RETURNING`` whether it created its row. Existing
        worlds and rooms are left as they are. Entity names are merged newest first without
        duplicates, metadata per source key; an entity whose merge changes nothing is not
        rewritten (``xmax = 0`` tells an insert from such an update).

        Returns:
            Which rows are new: the runtime emits WORLD_JOINED, ROOM_JOINED and ENTITY_JOINED
            for them (elizaOS connectors emit them when they see a new server, channel or member).
        """
        statements: list[tuple[Query, Params | None]] = [] if world is None else [_insert_world(room.agent_id, world)]
        statements += [
            _insert_room(room),
            _upsert_entity(room.agent_id, entity),
            (
                "INSERT INTO participants (agent_id, room_id, entity_id) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING true AS created",
                (room.agent_id, room.id, entity.id),
            ),
        ]
        async with self.pool.connection() as conn:
            *world_cur, room_cur, entity_cur, joined_cur = await in_one_round_trip(conn, statements)
            entity_row = await entity_cur.fetchone()
            return ConnectionWrite(
                world_created=bool(world_cur) and await world_cur[0].fetchone() is not None,
                room_created=await room_cur.fetchone() is not None,
                entity_created=entity_row is not None and bool(entity_row["created"]),
                participant_created=await joined_cur.fetchone() is not None,
            )

    # -- entities ---------------------------------------------------------------------------

    async def create_entities(self, entities: Sequence[Entity]) -> list[UUID]:
        """Insert entities in one statement (elizaOS ``createEntities``).

        Args:
            entities: Entities to create, each scoped by its own ``agent_id``. Names are
                stored without duplicates, in the order given.

        Returns:
            Ids of the entities created. Entities that already exist are left untouched and
            so are entities of an unknown agent: their ids are not returned.
        """
        if not entities:
            return []
        rows = await self._fetch_all(
            "INSERT INTO entities (agent_id, id, names, metadata)"
            " SELECT e.agent_id, e.id,"
            "   text_array_union(ARRAY(SELECT jsonb_array_elements_text(e.names)), NULL), e.metadata"
            " FROM unnest(%s::uuid[], %s::uuid[], %s::jsonb[], %s::jsonb[]) AS e(agent_id, id, names, metadata)"
            " WHERE EXISTS (SELECT 1 FROM agents a WHERE a.id = e.agent_id)"
            " ON CONFLICT (agent_id, id) DO NOTHING RETURNING id",
            (
                [e.agent_id for e in entities],
                [e.id for e in entities],
                [Jsonb(e.names) for e in entities],
                [Jsonb(e.metadata) for e in entities],
            ),
        )
        return [r["id"] for r in rows]

    async def get_entities_by_ids(self, agent_id: UUID, entity_ids: Sequence[UUID]) -> list[Entity]:
        """This agent's entities among ``entity_ids``, in the order asked (unknown ids skipped)."""
        rows = await self._fetch_all(
            f"SELECT {_ENTITY_COLUMNS} FROM entities e WHERE e.agent_id = %(a)s AND e.id = ANY(%(ids)s::uuid[])"
            " ORDER BY array_position(%(ids)s::uuid[], e.id)",
            {"a": agent_id, "ids": list(entity_ids)},
        )
        return [_entity_from_row(r) for r in rows]

    async def get_entities_for_room(
        self, agent_id: UUID, room_id: UUID, include_components: bool = False
    ) -> list[Entity]:
        """The room's participants as entities, in the order they joined (elizaOS ``getEntitiesForRoom``).

        Args:
            agent_id: The agent.
            room_id: The room; an unknown room has no entities.
            include_components: Also load each entity's components (attribute
                ``components``, oldest first), in the same query.
        """
        components = (
            f", (SELECT coalesce(jsonb_agg({COMPONENT_JSON} ORDER BY c.created_at, c.id), '[]')"
            "    FROM components c WHERE c.agent_id = e.agent_id AND c.entity_id = e.id) AS components"
            if include_components
            else ""
        )
        rows = await self._fetch_all(
            f"SELECT {_ENTITY_COLUMNS}{components}"
            " FROM participants p JOIN entities e ON e.agent_id = p.agent_id AND e.id = p.entity_id"
            " WHERE p.agent_id = %s AND p.room_id = %s ORDER BY p.created_at, e.id",
            (agent_id, room_id),
        )
        return [_entity_from_row(r) for r in rows]

    @idempotent
    async def update_entity(self, entity: Entity, *, merge: bool = False) -> bool:
        """Update an entity's names and metadata (elizaOS ``updateEntity``).

        Args:
            entity: The new state; ``agent_id`` and ``id`` say which entity.
            merge: False (elizaOS): replace names and metadata. True: merge them as
                ``ensure_connection`` does (new names first, metadata per source key).

        Returns:
            True when the entity exists; False otherwise (nothing is created).
        """
        if merge:
            sets = "names = text_array_union(%(n)s::text[], names), metadata = jsonb_merge_per_key(metadata, %(m)s)"
        else:
            sets = "names = text_array_union(%(n)s::text[], NULL), metadata = %(m)s"
        return (
            await self._execute(
                f"UPDATE entities SET {sets} WHERE agent_id = %(a)s AND id = %(e)s",
                {"a": entity.agent_id, "e": entity.id, "n": entity.names, "m": Jsonb(entity.metadata)},
            )
            == 1
        )

    async def get_entity_names(self, agent_id: UUID, entity_ids: Sequence[UUID]) -> dict[UUID, str]:
        """First known name of each entity that has one."""
        rows = await self._fetch_all(
            "SELECT id, names[1] AS name FROM entities WHERE agent_id = %s AND id = ANY(%s) AND cardinality(names) > 0",
            (agent_id, list(entity_ids)),
        )
        return {r["id"]: r["name"] for r in rows}

    # -- worlds -----------------------------------------------------------------------------

    async def create_world(self, world: World) -> bool:
        """Store a new world (elizaOS ``createWorld``).

        Returns:
            True when created; False when it already exists (left untouched) or its agent
            is unknown.
        """
        try:
            return (
                await self._execute(
                    "INSERT INTO worlds (agent_id, id, name, server_id, metadata) VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (agent_id, id) DO NOTHING",
                    (world.agent_id, world.id, world.name, world.server_id, Jsonb(world.metadata)),
                )
                == 1
            )
        except ForeignKeyViolation:
            return False

    async def get_world(self, agent_id: UUID, world_id: UUID) -> World | None:
        """The world, or ``None`` when this agent has no such world."""
        row = await self._fetch_one(
            f"SELECT {_WORLD_COLUMNS} FROM worlds WHERE agent_id = %s AND id = %s", (agent_id, world_id)
        )
        return None if row is None else World.model_validate(row)

    async def get_all_worlds(self, agent_id: UUID) -> list[World]:
        """Every world of this agent, oldest first (elizaOS ``getAllWorlds``)."""
        rows = await self._fetch_all(
            f"SELECT {_WORLD_COLUMNS} FROM worlds WHERE agent_id = %s ORDER BY created_at, id", (agent_id,)
        )
        return [World.model_validate(r) for r in rows]

    @idempotent
    async def update_world(self, world: World) -> bool:
        """Replace a world's name, server id and metadata.

        Returns:
            True when the world exists; False otherwise (nothing is created).
        """
        return (
            await self._execute(
                "UPDATE worlds SET name = %s, server_id = %s, metadata = %s WHERE agent_id = %s AND id = %s",
                (world.name, world.server_id, Jsonb(world.metadata), world.agent_id, world.id),
            )
            == 1
        )

    async def remove_world(self, agent_id: UUID, world_id: UUID) -> bool:
        """Delete a world and its rooms, with their memories, participants and components.

        Returns:
            True when the world existed.
        """
        return await self._execute("DELETE FROM worlds WHERE agent_id = %s AND id = %s", (agent_id, world_id)) == 1

    # -- rooms ------------------------------------------------------------------------------

    async def create_rooms(self, rooms: Sequence[Room]) -> list[UUID]:
        """Insert rooms in one statement (elizaOS ``createRooms``).

        Returns:
            Ids of the rooms created. Rooms that already exist are left untouched, and rooms
            whose agent or ``world_id`` is unknown are not created: their ids are not returned.
        """
        if not rooms:
            return []
        rows = await self._fetch_all(
            f"INSERT INTO rooms ({_ROOM_COLUMNS})"
            f" SELECT {_ROOM_COLUMNS} FROM unnest(%s::uuid[], %s::uuid[], %s::uuid[], %s::text[],"
            "   %s::text[], %s::text[], %s::text[], %s::text[], %s::jsonb[])"
            f"   AS r({_ROOM_COLUMNS})"
            " WHERE EXISTS (SELECT 1 FROM agents a WHERE a.id = r.agent_id)"
            "   AND (r.world_id IS NULL"
            "        OR EXISTS (SELECT 1 FROM worlds w WHERE w.agent_id = r.agent_id AND w.id = r.world_id))"
            " ON CONFLICT (agent_id, id) DO NOTHING RETURNING id",
            (
                [r.agent_id for r in rooms],
                [r.id for r in rooms],
                [r.world_id for r in rooms],
                [r.name for r in rooms],
                [r.source for r in rooms],
                [r.type.value for r in rooms],
                [r.channel_id for r in rooms],
                [r.server_id for r in rooms],
                [Jsonb(r.metadata) for r in rooms],
            ),
        )
        return [r["id"] for r in rows]

    async def get_room(self, agent_id: UUID, room_id: UUID) -> Room | None:
        """The room, or ``None`` when this agent has no such room."""
        row = await self._fetch_one(
            f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE agent_id = %s AND id = %s", (agent_id, room_id)
        )
        return None if row is None else Room.model_validate(row)

    async def get_room_access(self, agent_id: UUID, room_id: UUID, entity_id: UUID) -> RoomAccess | None:
        """The room and whether ``entity_id`` takes part in it, in one round trip (the API's
        room check); ``None`` when this agent has no such room."""
        row = await self._fetch_one(
            f"SELECT {_ROOM_COLUMNS}, EXISTS (SELECT 1 FROM participants p"
            "   WHERE p.agent_id = r.agent_id AND p.room_id = r.id AND p.entity_id = %s) AS is_participant"
            " FROM rooms r WHERE r.agent_id = %s AND r.id = %s",
            (entity_id, agent_id, room_id),
        )
        if row is None:
            return None
        is_participant = bool(row.pop("is_participant"))
        return RoomAccess(Room.model_validate(row), is_participant)

    async def get_rooms_by_ids(self, agent_id: UUID, room_ids: Sequence[UUID]) -> list[Room]:
        """This agent's rooms among ``room_ids``, in the order asked (unknown ids skipped)."""
        rows = await self._fetch_all(
            f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE agent_id = %(a)s AND id = ANY(%(ids)s::uuid[])"
            " ORDER BY array_position(%(ids)s::uuid[], id)",
            {"a": agent_id, "ids": list(room_ids)},
        )
        return [Room.model_validate(r) for r in rows]

    async def get_rooms_for_world(self, agent_id: UUID, world_id: UUID) -> list[Room]:
        """The world's rooms, oldest first (elizaOS ``getRoomsByWorld``)."""
        rows = await self._fetch_all(
            f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE agent_id = %s AND world_id = %s ORDER BY created_at, id",
            (agent_id, world_id),
        )
        return [Room.model_validate(r) for r in rows]

    @idempotent
    async def update_room(self, room: Room) -> bool:
        """Replace every field of a room but its id (elizaOS ``updateRoom``).

        Returns:
            True when updated; False when there is no such room, or ``world_id`` names a
            world this agent does not have.
        """
        return (
            await self._execute(
                "UPDATE rooms SET world_id = %(w)s, name = %(n)s, source = %(s)s, type = %(t)s,"
                " channel_id = %(c)s, server_id = %(sv)s, metadata = %(m)s"
                " WHERE agent_id = %(a)s AND id = %(r)s"
                "   AND (%(w)s::uuid IS NULL OR EXISTS (SELECT 1 FROM worlds w WHERE w.agent_id = %(a)s"
                "        AND w.id = %(w)s))",
                {
                    "a": room.agent_id,
                    "r": room.id,
                    "w": room.world_id,
                    "n": room.name,
                    "s": room.source,
                    "t": room.type.value,
                    "c": room.channel_id,
                    "sv": room.server_id,
                    "m": Jsonb(room.metadata),
                },
            )
            == 1
        )

    async def delete_room(self, agent_id: UUID, room_id: UUID) -> bool:
        """Delete a room with its memories (and their embeddings), participants and components.

        Returns:
            True when the room existed.
        """
        return await self._execute("DELETE FROM rooms WHERE agent_id = %s AND id = %s", (agent_id, room_id)) == 1

    async def get_rooms_for_participant(self, agent_id: UUID, entity_id: UUID) -> list[UUID]:
        """Ids of the rooms the entity takes part in, in the order it joined them."""
        return await self.get_rooms_for_participants(agent_id, [entity_id])

    async def get_rooms_for_participants(self, agent_id: UUID, entity_ids: Sequence[UUID]) -> list[UUID]:
        """Ids of the rooms any of the entities takes part in, each once, first joined first."""
        rows = await self._fetch_all(
            "SELECT room_id FROM participants WHERE agent_id = %s AND entity_id = ANY(%s::uuid[])"
            " GROUP BY room_id ORDER BY min(created_at), room_id",
            (agent_id, list(entity_ids)),
        )
        return [r["room_id"] for r in rows]

    # -- participants -----------------------------------------------------------------------

    @idempotent
    async def add_participants_room(self, agent_id: UUID, entity_ids: Sequence[UUID], room_id: UUID) -> bool:
        """Make entities participants of a room, in one statement (elizaOS ``addParticipantsRoom``).

        Entities that already take part stay as they are (their state is kept).

        Returns:
            True when the room and every entity exist (so all are now participants); False
            when the room or some entity is unknown (the known entities are still added).
        """
        wanted = set(entity_ids)
        if not wanted:
            return True
        known: int = await self._fetch_value(
            "WITH known AS ("
            "  SELECT e.id FROM entities e JOIN rooms r ON r.agent_id = e.agent_id AND r.id = %(r)s"
            "  WHERE e.agent_id = %(a)s AND e.id = ANY(%(ids)s::uuid[])),"
            " added AS (INSERT INTO participants (agent_id, room_id, entity_id)"
            "  SELECT %(a)s, %(r)s, id FROM known ON CONFLICT DO NOTHING)"
            " SELECT count(*) AS known FROM known",
            {"a": agent_id, "r": room_id, "ids": list(wanted)},
        )
        return known == len(wanted)

    async def remove_participant(self, agent_id: UUID, entity_id: UUID, room_id: UUID) -> bool:
        """Take an entity out of a room (elizaOS ``removeParticipant``).

        Returns:
            True when it was a participant.
        """
        return (
            await self._execute(
                "DELETE FROM participants WHERE agent_id = %s AND room_id = %s AND entity_id = %s",
                (agent_id, room_id, entity_id),
            )
            == 1
        )

    async def get_participants_for_room(self, agent_id: UUID, room_id: UUID) -> list[UUID]:
        """Ids of the room's participants, in the order they joined."""
        rows = await self._fetch_all(
            "SELECT entity_id FROM participants WHERE agent_id = %s AND room_id = %s ORDER BY created_at, entity_id",
            (agent_id, room_id),
        )
        return [r["entity_id"] for r in rows]

    async def get_participants_for_entity(self, agent_id: UUID, entity_id: UUID) -> list[ParticipantRecord]:
        """The entity's participations (room, state, since when), in the order it joined."""
        rows = await self._fetch_all(
            f"SELECT room_id, entity_id, room_state, {_MS.format('created_at')} AS created_at"
            " FROM participants WHERE agent_id = %s AND entity_id = %s ORDER BY created_at, room_id",
            (agent_id, entity_id),
        )
        return [
            ParticipantRecord(
                room_id=r["room_id"],
                entity_id=r["entity_id"],
                created_at=r["created_at"],
                room_state=None if r["room_state"] is None else ParticipantUserState(r["room_state"]),
            )
            for r in rows
        ]

    @idempotent
    async def is_room_participant(self, agent_id: UUID, room_id: UUID, entity_id: UUID) -> bool:
        """Whether the entity takes part in the room."""
        found: bool = await self._fetch_value(
            "SELECT EXISTS (SELECT 1 FROM participants WHERE agent_id = %s AND room_id = %s AND entity_id = %s)",
            (agent_id, room_id, entity_id),
        )
        return found

    async def get_participant_user_state(
        self, agent_id: UUID, room_id: UUID, entity_id: UUID
    ) -> ParticipantUserState | None:
        """FOLLOWED, MUTED, or ``None`` (no state, or not a participant)."""
        row = await self._fetch_one(
            "SELECT room_state FROM participants WHERE agent_id = %s AND room_id = %s AND entity_id = %s",
            (agent_id, room_id, entity_id),
        )
        if row is None or row["room_state"] is None:
            return None
        return ParticipantUserState(row["room_state"])

    @idempotent
    async def set_participant_user_state(
        self, agent_id: UUID, room_id: UUID, entity_id: UUID, state: ParticipantUserState | str | None
    ) -> bool:
        """Set how the agent treats a participant's room: FOLLOWED, MUTED or ``None`` (neither).

        Returns:
            True when the entity is a participant of the room; False otherwise (nothing is created).

        Raises:
            ValueError: ``state`` is not FOLLOWED, MUTED or ``None`` (checked before any SQL).
        """
        value = _user_state(state)
        return (
            await self._execute(
                "UPDATE participants SET room_state = %s WHERE agent_id = %s AND room_id = %s AND entity_id = %s",
                (None if value is None else value.value, agent_id, room_id, entity_id),
            )
            == 1
        )
