"""The agent-scoped storage surface of ``AgentRuntime`` (elizaOS ``IAgentRuntime``'s database half).

elizaOS's runtime extends ``IDatabaseAdapter`` and fills in its own ``agentId``: a plugin calls
``runtime.getRoom(roomId)``, never ``adapter.getRoom(agentId, roomId)``. This mixin is that
surface here: every method passes the agent's id to the shared adapter, so plugins and feature
code cannot read or write another agent's rows by mistake (docs/architecture.md "One schema,
many agents"). Names follow elizaOS 1.7 ``packages/core/src/runtime.ts`` in snake_case.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from core.types import Component, Content, Entity, Memory, MemoryMetadata, ModelType, Relationship, Room, World

if TYPE_CHECKING:
    from core.blueprint import AgentBlueprint
    from core.db.adapter import DatabaseAdapter, ParticipantUserState


class AgentStore:
    """Entities, rooms, worlds, participants, components, relationships, memories and cache of one agent.

    Mixed into ``AgentRuntime``; ``adapter`` and ``blueprint`` are the runtime's.
    """

    adapter: DatabaseAdapter
    blueprint: AgentBlueprint

    @property
    def agent_id(self) -> UUID:
        return self.blueprint.agent_id

    if TYPE_CHECKING:  # AgentRuntime's, which this is mixed into

        async def use_model(self, model_type: ModelType, params: Mapping[str, Any] | None = None) -> Any: ...

    # -- entities (elizaOS getEntityById, getEntitiesByIds, createEntity, updateEntity) -----

    async def get_entity_by_id(self, entity_id: UUID) -> Entity | None:
        """elizaOS ``getEntityById``: the agent's view of one entity, or ``None``."""
        found = await self.adapter.get_entities_by_ids(self.agent_id, [entity_id])
        return found[0] if found else None

    async def get_entities_by_ids(self, entity_ids: Sequence[UUID]) -> list[Entity]:
        """elizaOS ``getEntitiesByIds``: the known ones among ``entity_ids`` (unknown ids are left out)."""
        return await self.adapter.get_entities_by_ids(self.agent_id, entity_ids)

    async def get_entities_for_room(self, room_id: UUID, include_components: bool = False) -> list[Entity]:
        """elizaOS ``getEntitiesForRoom``: the room's participants as entities."""
        return await self.adapter.get_entities_for_room(self.agent_id, room_id, include_components)

    async def create_entity(self, entity: Entity) -> bool:
        """elizaOS ``createEntity``: store an entity of this agent. Returns False when it already existed."""
        created = await self.adapter.create_entities([entity.model_copy(update={"agent_id": self.agent_id})])
        return bool(created)

    async def update_entity(self, entity: Entity, *, merge: bool = False) -> bool:
        """elizaOS ``updateEntity``: replace (or with ``merge``, merge names and metadata). False: unknown entity."""
        return await self.adapter.update_entity(entity.model_copy(update={"agent_id": self.agent_id}), merge=merge)

    async def get_entity_names(self, entity_ids: Sequence[UUID]) -> dict[UUID, str]:
        """Each known entity's display name (its first name), by id."""
        return await self.adapter.get_entity_names(self.agent_id, entity_ids)

    # -- worlds and rooms (elizaOS getWorld, updateWorld, ensureWorldExists, getRoom...) ------

    async def get_world(self, world_id: UUID) -> World | None:
        """elizaOS ``getWorld``: one of the agent's worlds, or ``None``."""
        return await self.adapter.get_world(self.agent_id, world_id)

    async def get_all_worlds(self) -> list[World]:
        """elizaOS ``getAllWorlds``: every world of the agent."""
        return await self.adapter.get_all_worlds(self.agent_id)

    async def update_world(self, world: World) -> bool:
        """elizaOS ``updateWorld``: replace name, server id and metadata. False: unknown world."""
        return await self.adapter.update_world(world.model_copy(update={"agent_id": self.agent_id}))

    async def ensure_world_exists(self, world: World) -> None:
        """elizaOS ``ensureWorldExists``: create the world unless the agent has it (an existing one is kept as is).

        One statement (insert, nothing on conflict) rather than elizaOS's read-then-write.
        """
        await self.adapter.create_world(world.model_copy(update={"agent_id": self.agent_id}))

    async def get_room(self, room_id: UUID) -> Room | None:
        """elizaOS ``getRoom``: one of the agent's rooms, ``None`` when it has none of that id."""
        return await self.adapter.get_room(self.agent_id, room_id)

    async def get_rooms(self, world_id: UUID) -> list[Room]:
        """elizaOS ``getRooms(worldId)``: the rooms of one world."""
        return await self.adapter.get_rooms_for_world(self.agent_id, world_id)

    async def update_room(self, room: Room) -> bool:
        """elizaOS ``updateRoom``. False: unknown room."""
        return await self.adapter.update_room(room.model_copy(update={"agent_id": self.agent_id}))

    async def ensure_room_exists(self, room: Room) -> None:
        """elizaOS ``ensureRoomExists``: create the room unless the agent has it (an existing one is kept as is)."""
        await self.adapter.create_rooms([room.model_copy(update={"agent_id": self.agent_id})])

    # -- participants (elizaOS getParticipantUserState, setParticipantUserState...) -----------

    async def get_participants_for_room(self, room_id: UUID) -> list[UUID]:
        """elizaOS ``getParticipantsForRoom``: entity ids, in the order they joined."""
        return await self.adapter.get_participants_for_room(self.agent_id, room_id)

    async def get_rooms_for_participant(self, entity_id: UUID) -> list[UUID]:
        """elizaOS ``getRoomsForParticipant``: ids of the rooms the entity takes part in."""
        return await self.adapter.get_rooms_for_participant(self.agent_id, entity_id)

    async def add_participant(self, entity_id: UUID, room_id: UUID) -> bool:
        """elizaOS ``addParticipant``. False when the entity or the room is unknown."""
        return await self.adapter.add_participants_room(self.agent_id, [entity_id], room_id)

    async def ensure_participant_in_room(self, entity_id: UUID, room_id: UUID) -> None:
        """elizaOS ``ensureParticipantInRoom``; the agent itself is stored as an entity first when needed.

        Raises:
            NotFoundError: the entity (other than the agent) or the room is unknown.
        """
        from core.errors import NotFoundError

        if entity_id == self.agent_id:
            await self.adapter.create_entities([self._agent_entity()])
        if not await self.add_participant(entity_id, room_id):
            raise NotFoundError(f"cannot add entity {entity_id} to room {room_id}: unknown entity or room")

    async def get_participant_user_state(self, room_id: UUID, entity_id: UUID) -> ParticipantUserState | None:
        """elizaOS ``getParticipantUserState``: FOLLOWED, MUTED or ``None``."""
        return await self.adapter.get_participant_user_state(self.agent_id, room_id, entity_id)

    async def set_participant_user_state(
        self, room_id: UUID, entity_id: UUID, state: ParticipantUserState | str | None
    ) -> None:
        """elizaOS ``setParticipantUserState``: FOLLOWED, MUTED or ``None``.

        The agent is rarely a stored participant of its rooms (the turn stores only the
        sender's participation), so setting the agent's own state makes it one first, as
        elizaOS's ``ensureConnection`` would have.

        Raises:
            ValueError: ``state`` is not FOLLOWED, MUTED or ``None``.
            NotFoundError: the entity is not a participant (and is not the agent) or the room is unknown.
        """
        if await self.adapter.set_participant_user_state(self.agent_id, room_id, entity_id, state):
            return
        await self.ensure_participant_in_room(entity_id, room_id)
        await self.adapter.set_participant_user_state(self.agent_id, room_id, entity_id, state)

    def _agent_entity(self) -> Entity:
        name = self.blueprint.character.name
        return Entity(id=self.agent_id, agent_id=self.agent_id, names=[name], metadata={})

    # -- components (elizaOS getComponent, getComponents, createComponent...) -----------------

    async def get_component(
        self, entity_id: UUID, type: str, world_id: UUID | None = None, source_entity_id: UUID | None = None
    ) -> Component | None:
        """elizaOS ``getComponent``: the entity's component of this type (in this world, from this source)."""
        return await self.adapter.get_component(self.agent_id, entity_id, type, world_id, source_entity_id)

    async def get_components(
        self, entity_id: UUID, world_id: UUID | None = None, source_entity_id: UUID | None = None
    ) -> list[Component]:
        """elizaOS ``getComponents``: every component of the entity (narrowed by world / source)."""
        return await self.adapter.get_components(self.agent_id, entity_id, world_id, source_entity_id)

    async def create_component(self, component: Component) -> bool:
        """elizaOS ``createComponent``. False when it was not stored (unknown entity, or a duplicate)."""
        return await self.adapter.create_component(component.model_copy(update={"agent_id": self.agent_id}))

    async def update_component(self, component: Component) -> bool:
        """elizaOS ``updateComponent``: replace its data. False: unknown component."""
        return await self.adapter.update_component(component.model_copy(update={"agent_id": self.agent_id}))

    async def delete_component(self, component_id: UUID) -> bool:
        """elizaOS ``deleteComponent``. False: there was none."""
        return await self.adapter.delete_component(self.agent_id, component_id)

    # -- relationships (elizaOS createRelationship, getRelationship(s), updateRelationship) ---

    async def create_relationship(
        self,
        source_entity_id: UUID,
        target_entity_id: UUID,
        *,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> Relationship | None:
        """elizaOS ``createRelationship``: ``None`` when an entity is unknown."""
        return await self.adapter.create_relationship(
            self.agent_id, source_entity_id, target_entity_id, tags=tags, metadata=metadata
        )

    async def get_relationship(self, source_entity_id: UUID, target_entity_id: UUID) -> Relationship | None:
        """elizaOS ``getRelationship``."""
        return await self.adapter.get_relationship(self.agent_id, source_entity_id, target_entity_id)

    async def get_relationships(self, entity_id: UUID, tags: Sequence[str] | None = None) -> list[Relationship]:
        """elizaOS ``getRelationships``: the entity's relationships (either side), having all ``tags``."""
        return await self.adapter.get_relationships(self.agent_id, entity_id, tags)

    async def update_relationship(self, relationship: Relationship) -> bool:
        """elizaOS ``updateRelationship``: tags and metadata. False: unknown relationship."""
        return await self.adapter.update_relationship(relationship)

    # -- memories (elizaOS getMemoryById, updateMemory, deleteMemory, addEmbeddingToMemory) ---

    async def get_memory_by_id(self, memory_id: UUID) -> Memory | None:
        """elizaOS ``getMemoryById``: one of the agent's memories (any table), or ``None``."""
        return await self.adapter.get_memory_by_id(self.agent_id, memory_id)

    async def get_memories_by_ids(self, memory_ids: Sequence[UUID], table: str | None = None) -> list[Memory]:
        """elizaOS ``getMemoriesByIds``: the agent's memories among ``memory_ids`` (of ``table`` if given)."""
        return await self.adapter.get_memories_by_ids(self.agent_id, memory_ids, table)

    async def update_memory(
        self,
        memory_id: UUID,
        content: Content | Mapping[str, Any] | None = None,
        metadata: MemoryMetadata | Mapping[str, Any] | None = None,
    ) -> bool:
        """elizaOS ``updateMemory({id, content?, metadata?})``: replace the content and/or merge metadata.

        New text makes the stored vector stale; the embedding sweep re-embeds it.

        Returns:
            False when the agent has no such memory.
        """
        return await self.adapter.update_memory(
            self.agent_id,
            memory_id,
            dict(content) if isinstance(content, Mapping) else content,
            dict(metadata) if isinstance(metadata, Mapping) else metadata,
        )

    async def delete_memory(self, memory_id: UUID) -> bool:
        """elizaOS ``deleteMemory``: the memory and its vector. False: there was none."""
        return await self.adapter.delete_memory(self.agent_id, memory_id)

    async def count_memories(self, room_id: UUID | None = None, table: str | None = None) -> int:
        """elizaOS ``countMemories``: the agent's memories (of a room, of a table)."""
        return await self.adapter.count_memories(self.agent_id, room_id, table)

    async def add_embedding_to_memory(self, memory: Memory) -> Memory:
        """elizaOS ``addEmbeddingToMemory``: the memory with ``embedding`` set from ``TEXT_EMBEDDING``.

        A memory that has one, or has no text, is returned as is. Nothing is stored here;
        ``create_memory`` stores the vector with the memory. Prefer ``queue_embedding_generation``
        on the reply path: it costs the turn nothing.

        Raises:
            ModelNotFoundError, ModelError: no embedding model, or it failed.
        """
        if memory.embedding is not None or not memory.text:
            return memory
        vector = await self.use_model(ModelType.TEXT_EMBEDDING, {"text": memory.text})
        return memory.model_copy(update={"embedding": [float(v) for v in vector]})

    async def _store_embedding(self, memory: Memory) -> None:
        if memory.embedding is None:
            return
        # Lazy: the adapter's types cost start-up time, and few turns store an embedding here.
        from core.db.adapter import EmbeddingRow

        row = EmbeddingRow(memory.id, self.agent_id, memory.content_hash, "runtime", memory.embedding)
        await self.adapter.upsert_embeddings([row])

    # -- cache (elizaOS getCache / setCache / deleteCache) -----------------------------------

    async def get_cache(self, key: str) -> Any | None:
        """elizaOS ``getCache``: the agent's cached JSON value, ``None`` when absent or expired."""
        return await self.adapter.get_cache(self.agent_id, key)

    async def set_cache(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        """elizaOS ``setCache``: a JSON value, kept ``ttl_s`` seconds (forever when ``None``)."""
        await self.adapter.set_cache(self.agent_id, key, value, ttl_s)

    async def delete_cache(self, key: str) -> bool:
        """elizaOS ``deleteCache``. False: there was none."""
        return await self.adapter.delete_cache(self.agent_id, key)
