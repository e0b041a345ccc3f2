"""Components: typed data one agent keeps about an entity (elizaOS ``Component``)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from psycopg.errors import ForeignKeyViolation
from psycopg.types.json import Jsonb

from core.db.postgres.base import PostgresBase
from core.db.retry import idempotent
from core.types import Component

_FIELDS = ("id", "entity_id", "agent_id", "room_id", "world_id", "source_entity_id", "type", "data")
_CREATED_MS = "(extract(epoch FROM c.created_at) * 1000)::bigint"
#: Columns of a component row (alias ``c``), ``created_at`` in epoch milliseconds.
COMPONENT_COLUMNS = ", ".join(f"c.{f}" for f in _FIELDS) + f", {_CREATED_MS} AS created_at"
#: One component row (alias ``c``) as a JSON object ``Component.model_validate`` reads.
COMPONENT_JSON = "jsonb_build_object(" + ", ".join(f"'{f}', c.{f}" for f in _FIELDS) + f", 'created_at', {_CREATED_MS})"
#: Optional filters of get_component(s): a NULL parameter means "any".
_FILTERS = " AND (%(w)s::uuid IS NULL OR c.world_id = %(w)s) AND (%(s)s::uuid IS NULL OR c.source_entity_id = %(s)s)"


class ComponentsMixin(PostgresBase):
    async def create_component(self, component: Component) -> bool:
        """Store a new component (elizaOS ``createComponent``).

        Returns:
            True when created; False when a component with this id already exists (left
            untouched) or the entity, room, world or source entity is unknown to the agent.
        """
        try:
            return (
                await self._execute(
                    "INSERT INTO components (agent_id, id, entity_id, room_id, world_id, source_entity_id, type,"
                    " data, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (agent_id, id) DO NOTHING",
                    (
                        component.agent_id,
                        component.id,
                        component.entity_id,
                        component.room_id,
                        component.world_id,
                        component.source_entity_id,
                        component.type,
                        Jsonb(component.data),
                        datetime.fromtimestamp(component.created_at / 1000, UTC),
                    ),
                )
                == 1
            )
        except ForeignKeyViolation:
            return False

    async def get_component(
        self,
        agent_id: UUID,
        entity_id: UUID,
        type: str,
        world_id: UUID | None = None,
        source_entity_id: UUID | None = None,
    ) -> Component | None:
        """The entity's component of ``type`` (elizaOS ``getComponent``).

        Args:
            agent_id: The agent.
            entity_id: The entity.
            type: Component type, matched exactly.
            world_id: Only a component of this world (any world when ``None``).
            source_entity_id: Only a component asserted by this entity (anyone when ``None``).

        Returns:
            The newest match, or ``None``.
        """
        row = await self._fetch_one(
            f"SELECT {COMPONENT_COLUMNS} FROM components c"
            f" WHERE c.agent_id = %(a)s AND c.entity_id = %(e)s AND c.type = %(t)s{_FILTERS}"
            " ORDER BY c.created_at DESC, c.id DESC LIMIT 1",
            {"a": agent_id, "e": entity_id, "t": type, "w": world_id, "s": source_entity_id},
        )
        return None if row is None else Component.model_validate(row)

    async def get_components(
        self, agent_id: UUID, entity_id: UUID, world_id: UUID | None = None, source_entity_id: UUID | None = None
    ) -> list[Component]:
        """Every component of the entity, oldest first (elizaOS ``getComponents``).

        Args:
            agent_id: The agent.
            entity_id: The entity.
            world_id: Only components of this world (any world when ``None``).
            source_entity_id: Only components asserted by this entity (anyone when ``None``).
        """
        rows = await self._fetch_all(
            f"SELECT {COMPONENT_COLUMNS} FROM components c"
            f" WHERE c.agent_id = %(a)s AND c.entity_id = %(e)s{_FILTERS}"
            " ORDER BY c.created_at, c.id",
            {"a": agent_id, "e": entity_id, "w": world_id, "s": source_entity_id},
        )
        return [Component.model_validate(r) for r in rows]

    @idempotent
    async def update_component(self, component: Component) -> bool:
        """Replace a component's type, data, room, world and source (elizaOS ``updateComponent``).

        A component never moves to another entity: ``entity_id`` must be the stored one.

        Returns:
            True when updated; False when this agent has no component with this id on this
            entity, or the new room, world or source entity is unknown to the agent.
        """
        try:
            return (
                await self._execute(
                    "UPDATE components SET type = %s, data = %s, room_id = %s, world_id = %s, source_entity_id = %s"
                    " WHERE agent_id = %s AND id = %s AND entity_id = %s",
                    (
                        component.type,
                        Jsonb(component.data),
                        component.room_id,
                        component.world_id,
                        component.source_entity_id,
                        component.agent_id,
                        component.id,
                        component.entity_id,
                    ),
                )
                == 1
            )
        except ForeignKeyViolation:
            return False

    async def delete_component(self, agent_id: UUID, component_id: UUID) -> bool:
        """Delete a component (elizaOS ``deleteComponent``).

        Returns:
            True when it existed.
        """
        return (
            await self._execute("DELETE FROM components WHERE agent_id = %s AND id = %s", (agent_id, component_id)) == 1
        )
