"""The database adapter protocol: what the runtime needs from storage (elizaOS ``IDatabaseAdapter``).

Every method is scoped by ``agent_id``. ``PostgresAdapter`` is the implementation; the
protocol keeps the runtime independent of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from core.types import (
    Component,
    Content,
    Entity,
    Log,
    Memory,
    MemoryMetadata,
    Relationship,
    Room,
    Task,
    TaskUpdate,
    World,
)
from core.types.fact import Fact, FactWrite, OrphanSweep


class RoomAccess(NamedTuple):
    """A room and whether one entity takes part in it (``get_room_access``)."""

    room: Room
    is_participant: bool


class AgentRecord(NamedTuple):
    """A stored agent: its id, name and character document (elizaOS JSON).

    Attributes:
        id: Agent id.
        name: Character name, unique case-insensitively (the API's ``{agent}``).
        character: The character document (elizaOS JSON).
        enabled: Whether the runtime loads it (``get_agents`` lists enabled agents by default).
    """

    id: UUID
    name: str
    character: dict[str, Any]
    enabled: bool = True


class AgentVersion(NamedTuple):
    """An enabled agent's row as ``get_agent_versions`` reads it: the character only when it is news.

    Attributes:
        id: Agent id.
        name: Its name.
        updated_at: When the row last changed (every writer of ``agents`` sets it).
        character: The character document, or ``None`` when the caller already holds this version.
    """

    id: UUID
    name: str
    updated_at: datetime
    character: dict[str, Any] | None


class ParticipantUserState(StrEnum):
    """How the agent treats a participant's room (elizaOS ``ParticipantUserState``; no state is ``None``)."""

    FOLLOWED = "FOLLOWED"
    MUTED = "MUTED"


class ConnectionWrite(NamedTuple):
    """Which rows ``ensure_connection`` created (``False``: the row was there already).

    Attributes:
        world_created: The world is new (always ``False`` without a world).
        room_created: The room is new.
        entity_created: The entity is new (an existing one whose names were merged is not).
        participant_created: The entity has just joined the room.
    """

    world_created: bool = False
    room_created: bool = False
    entity_created: bool = False
    participant_created: bool = False


class ParticipantRecord(NamedTuple):
    """One entity taking part in one room (elizaOS ``Participant``).

    Attributes:
        room_id: The room.
        entity_id: The entity.
        room_state: FOLLOWED, MUTED, or ``None``.
        created_at: When it joined, in milliseconds since the epoch.
    """

    room_id: UUID
    entity_id: UUID
    room_state: ParticipantUserState | None
    created_at: int


#: Embedding dimensions the schema stores, each in its own column with an HNSW cosine index
#: (3072 as ``halfvec``: HNSW indexes ``vector`` up to 2,000 dimensions only).
EMBEDDING_DIMENSIONS: tuple[int, ...] = (384, 512, 768, 1024, 1536, 3072)


class EmbeddingTarget(NamedTuple):
    """What the embedding worker needs to know about one memory.

    Attributes:
        memory_id: The memory.
        agent_id: Its agent.
        text: Its current text.
        content_hash: SHA-256 of that text.
        embedded_hash: Hash of the text the stored vector was made from (``None``: no vector yet).
    """

    memory_id: UUID
    agent_id: UUID
    text: str
    content_hash: str
    embedded_hash: str | None


class EmbeddingRow(NamedTuple):
    """A computed vector to store for ``memory_id`` (made from the text whose hash is ``content_hash``)."""

    memory_id: UUID
    agent_id: UUID
    content_hash: str
    model: str
    vector: Sequence[float]


class MemoryPage(NamedTuple):
    """One page of ``list_memories``.

    Attributes:
        memories: The page, in the order asked for.
        next_cursor: Pass as ``cursor`` to get the next page; ``None`` when this is the last.
    """

    memories: list[Memory]
    next_cursor: str | None


class KnowledgeWrite(NamedTuple):
    """What ``upsert_knowledge_document`` did.

    Attributes:
        status: ``"added"``, ``"unchanged"`` (same text, same splitting: nothing written) or
            ``"replaced"`` (old fragments deleted, new ones stored).
        document_id: The document.
        to_embed: Fragments to queue for embedding: the new ones, or for an unchanged
            document those still without a vector of their current text.
    """

    status: str
    document_id: UUID
    to_embed: list[Memory]


class FragmentCounts(NamedTuple):
    """Where one owner's knowledge fragments stand with their embeddings (``knowledge_embedding_counts``).

    Attributes:
        owner_id: The agent (or the shared knowledge owner) the fragments belong to.
        fragments: Every fragment.
        embedded: Fragments with a vector of their current text, of the configured dimension.
        queued: Fragments without one, younger than the sweep's age limit: queued, in a queue,
            waiting for a retry or for the sweep.
        failed: Fragments without one, older than the sweep's age limit: nothing retries them
            any more (importing the document again queues them).
    """

    owner_id: UUID
    fragments: int
    embedded: int
    queued: int
    failed: int


class DatabaseAdapter(Protocol):
    """Storage used by ``AgentRuntime`` and the handlers. Sections follow ``core/db/postgres/`` modules."""

    # -- agents (postgres/agents.py) ---------------------------------------------------------

    async def upsert_agents(self, agents: Sequence[AgentRecord]) -> None: ...

    async def create_agent(self, agent: AgentRecord) -> bool: ...

    async def get_agent(self, agent_id: UUID) -> AgentRecord | None: ...

    async def get_agents(self, *, include_disabled: bool = False) -> list[AgentRecord]: ...

    async def get_agent_versions(self, known: Mapping[UUID, datetime]) -> list[AgentVersion]: ...

    async def update_agent(self, agent_id: UUID, changes: Mapping[str, Any]) -> bool: ...

    async def delete_agent(self, agent_id: UUID) -> bool: ...

    # -- entities, worlds, rooms, participants (postgres/connections.py) -----------------------

    async def ensure_connection(self, entity: Entity, room: Room, world: World | None) -> ConnectionWrite: ...

    async def create_entities(self, entities: Sequence[Entity]) -> list[UUID]: ...

    async def get_entities_by_ids(self, agent_id: UUID, entity_ids: Sequence[UUID]) -> list[Entity]: ...

    async def get_entities_for_room(
        self, agent_id: UUID, room_id: UUID, include_components: bool = False
    ) -> list[Entity]: ...

    async def update_entity(self, entity: Entity, *, merge: bool = False) -> bool: ...

    async def get_entity_names(self, agent_id: UUID, entity_ids: Sequence[UUID]) -> dict[UUID, str]: ...

    async def create_world(self, world: World) -> bool: ...

    async def get_world(self, agent_id: UUID, world_id: UUID) -> World | None: ...

    async def get_all_worlds(self, agent_id: UUID) -> list[World]: ...

    async def update_world(self, world: World) -> bool: ...

    async def remove_world(self, agent_id: UUID, world_id: UUID) -> bool: ...

    async def create_rooms(self, rooms: Sequence[Room]) -> list[UUID]: ...

    async def get_room(self, agent_id: UUID, room_id: UUID) -> Room | None: ...

    async def get_room_access(self, agent_id: UUID, room_id: UUID, entity_id: UUID) -> RoomAccess | None: ...

    async def get_rooms_by_ids(self, agent_id: UUID, room_ids: Sequence[UUID]) -> list[Room]: ...

    async def get_rooms_for_world(self, agent_id: UUID, world_id: UUID) -> list[Room]: ...

    async def update_room(self, room: Room) -> bool: ...

    async def delete_room(self, agent_id: UUID, room_id: UUID) -> bool: ...

    async def get_rooms_for_participant(self, agent_id: UUID, entity_id: UUID) -> list[UUID]: ...

    async def get_rooms_for_participants(self, agent_id: UUID, entity_ids: Sequence[UUID]) -> list[UUID]: ...

    async def add_participants_room(self, agent_id: UUID, entity_ids: Sequence[UUID], room_id: UUID) -> bool: ...

    async def remove_participant(self, agent_id: UUID, entity_id: UUID, room_id: UUID) -> bool: ...

    async def get_participants_for_room(self, agent_id: UUID, room_id: UUID) -> list[UUID]: ...

    async def get_participants_for_entity(self, agent_id: UUID, entity_id: UUID) -> list[ParticipantRecord]: ...

    async def is_room_participant(self, agent_id: UUID, room_id: UUID, entity_id: UUID) -> bool: ...

    async def get_participant_user_state(
        self, agent_id: UUID, room_id: UUID, entity_id: UUID
    ) -> ParticipantUserState | None: ...

    async def set_participant_user_state(
        self, agent_id: UUID, room_id: UUID, entity_id: UUID, state: ParticipantUserState | str | None
    ) -> bool: ...

    # -- components (postgres/components.py) ---------------------------------------------------

    async def create_component(self, component: Component) -> bool: ...

    async def get_component(
        self,
        agent_id: UUID,
        entity_id: UUID,
        type: str,
        world_id: UUID | None = None,
        source_entity_id: UUID | None = None,
    ) -> Component | None: ...

    async def get_components(
        self, agent_id: UUID, entity_id: UUID, world_id: UUID | None = None, source_entity_id: UUID | None = None
    ) -> list[Component]: ...

    async def update_component(self, component: Component) -> bool: ...

    async def delete_component(self, agent_id: UUID, component_id: UUID) -> bool: ...

    # -- relationships (postgres/relationships.py) ---------------------------------------------

    async def create_relationship(
        self,
        agent_id: UUID,
        source_entity_id: UUID,
        target_entity_id: UUID,
        *,
        tags: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        strength: float | None = None,
    ) -> Relationship | None: ...

    async def update_relationship(self, relationship: Relationship) -> bool: ...

    async def get_relationship(
        self, agent_id: UUID, source_entity_id: UUID, target_entity_id: UUID
    ) -> Relationship | None: ...

    async def get_relationships(
        self, agent_id: UUID, entity_id: UUID, tags: Sequence[str] | None = None
    ) -> list[Relationship]: ...

    async def record_interaction(
        self, agent_id: UUID, source_entity_id: UUID, target_entity_id: UUID, *, step: float = 0.1
    ) -> Relationship | None: ...

    # -- memories (postgres/memories.py) -------------------------------------------------------

    async def create_memories(self, memories: Sequence[Memory], table: str) -> None: ...

    async def get_memories(self, agent_id: UUID, room_id: UUID, table: str, count: int) -> list[Memory]: ...

    async def create_reply(self, reply: Memory, table: str, *, answering: Memory, logs: Sequence[Log] = ()) -> bool: ...

    async def create_memory(self, memory: Memory, table: str, unique: bool = False) -> UUID: ...

    async def get_message_with_replies(
        self, agent_id: UUID, message_id: UUID
    ) -> tuple[Memory | None, list[Memory]]: ...

    async def get_memory_by_id(self, agent_id: UUID, id: UUID) -> Memory | None: ...

    async def get_memories_by_ids(
        self, agent_id: UUID, ids: Sequence[UUID], table: str | None = None
    ) -> list[Memory]: ...

    async def get_memories_by_room_ids(
        self, agent_id: UUID, room_ids: Sequence[UUID], table: str, limit: int = 100
    ) -> list[Memory]: ...

    async def get_memories_by_world_id(
        self, agent_id: UUID, world_id: UUID, table: str, count: int = 100
    ) -> list[Memory]: ...

    async def list_memories(
        self,
        agent_id: UUID,
        *,
        table: str,
        room_id: UUID | None = None,
        entity_id: UUID | None = None,
        world_id: UUID | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 50,
        cursor: str | None = None,
        newest_first: bool = True,
    ) -> MemoryPage: ...

    async def update_memory(
        self,
        agent_id: UUID,
        id: UUID,
        content: Content | dict[str, Any] | None = None,
        metadata: MemoryMetadata | dict[str, Any] | None = None,
    ) -> bool: ...

    async def delete_memory(self, agent_id: UUID, id: UUID) -> bool: ...

    async def delete_many_memories(self, agent_id: UUID, ids: Sequence[UUID]) -> int: ...

    async def delete_all_memories(self, agent_id: UUID, room_id: UUID, table: str) -> int: ...

    async def count_memories(
        self, agent_id: UUID, room_id: UUID | None = None, table: str | None = None, unique_only: bool = False
    ) -> int: ...

    # -- logs (postgres/logs.py) ---------------------------------------------------------------

    async def log(self, entry: Log) -> UUID: ...

    async def log_many(self, entries: Sequence[Log]) -> int: ...

    async def get_logs(
        self,
        agent_id: UUID,
        *,
        entity_id: UUID | None = None,
        room_id: UUID | None = None,
        type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Log]: ...

    async def delete_log(self, agent_id: UUID, id: UUID) -> bool: ...

    # -- cache (postgres/cache.py) -------------------------------------------------------------

    async def get_cache(self, agent_id: UUID, key: str) -> Any | None: ...

    async def set_cache(self, agent_id: UUID, key: str, value: Any, ttl_s: float | None = None) -> None: ...

    async def delete_cache(self, agent_id: UUID, key: str) -> bool: ...

    async def delete_expired_cache(self, limit: int = 1000) -> int: ...

    # -- tasks (postgres/tasks.py) -------------------------------------------------------------

    async def create_task(self, task: Task) -> UUID: ...

    async def get_task(self, agent_id: UUID, id: UUID) -> Task | None: ...

    async def get_tasks(
        self,
        agent_id: UUID,
        *,
        room_id: UUID | None = None,
        tags: Sequence[str] | None = None,
        entity_id: UUID | None = None,
        limit: int = 500,
    ) -> list[Task]: ...

    async def get_tasks_by_name(self, agent_id: UUID, name: str) -> list[Task]: ...

    async def update_task(self, agent_id: UUID, id: UUID, changes: TaskUpdate | Mapping[str, Any]) -> bool: ...

    async def delete_task(self, agent_id: UUID, id: UUID) -> bool: ...

    async def claim_due_tasks(
        self,
        owner: str,
        workers: Sequence[tuple[UUID, str]],
        *,
        limit: int,
        lease_s: float,
        exclude: Sequence[UUID] = (),
    ) -> list[Task]: ...

    async def complete_task(self, agent_id: UUID, id: UUID, owner: str) -> bool: ...

    async def reschedule_task(self, agent_id: UUID, id: UUID, owner: str, *, elapsed_ms: int = 0) -> bool: ...

    async def fail_task(self, agent_id: UUID, id: UUID, owner: str, error: str, *, retry_in_ms: int | None) -> bool: ...

    async def release_task(self, agent_id: UUID, id: UUID, owner: str) -> bool: ...

    async def recover_expired_task_leases(
        self,
        agent_ids: Sequence[UUID],
        *,
        max_attempts: int,
        retry_base_delay_ms: int,
        retry_max_delay_ms: int,
        limit: int = 100,
    ) -> list[Task]: ...

    async def count_due_tasks_without_worker(
        self, agent_ids: Sequence[UUID], workers: Sequence[tuple[UUID, str]], *, scan_limit: int = 1000
    ) -> dict[tuple[UUID, str], int]: ...

    # -- embeddings (postgres/embeddings.py) ---------------------------------------------------

    async def get_embedding_targets(self, memory_ids: Sequence[UUID]) -> list[EmbeddingTarget]: ...

    async def upsert_embeddings(self, rows: Sequence[EmbeddingRow]) -> int: ...

    async def get_pending_embeddings(
        self, older_than_s: float, limit: int, *, max_age_s: float = 86_400.0, max_requeues: int | None = None
    ) -> list[Memory]: ...

    async def record_embedding_requeues(self, memories: Sequence[Memory]) -> None: ...

    async def search_memories(
        self,
        agent_id: UUID,
        embedding: Sequence[float],
        *,
        table: str | None = None,
        room_id: UUID | None = None,
        world_id: UUID | None = None,
        entity_id: UUID | None = None,
        count: int = 10,
        match_threshold: float = 0.0,
        query_text: str | None = None,
    ) -> list[Memory]: ...

    # -- knowledge (postgres/knowledge.py) -----------------------------------------------------

    async def upsert_knowledge_document(self, document: Memory, fragments: Sequence[Memory]) -> KnowledgeWrite: ...

    async def delete_knowledge_document(self, owner_ids: Sequence[UUID], document_id: UUID) -> bool: ...

    async def get_knowledge_document(self, owner_ids: Sequence[UUID], document_id: UUID) -> Memory | None: ...

    async def get_knowledge_fragments(self, owner_id: UUID, document_id: UUID) -> list[Memory]: ...

    async def knowledge_embedding_counts(
        self, owner_ids: Sequence[UUID], *, given_up_after_s: float
    ) -> list[FragmentCounts]: ...

    async def list_knowledge_documents(
        self, owner_ids: Sequence[UUID], *, limit: int = 50, cursor: str | None = None
    ) -> MemoryPage: ...

    async def search_knowledge(
        self,
        owner_ids: Sequence[UUID],
        embedding: Sequence[float],
        *,
        count: int = 5,
        match_threshold: float = 0.0,
        query_text: str | None = None,
    ) -> list[Memory]: ...

    # -- facts (postgres/facts.py) -------------------------------------------------------------

    async def upsert_facts(self, facts: Sequence[Fact]) -> list[FactWrite]: ...

    async def get_fact_rooms_since(self, agent_id: UUID, since_ms: int, limit: int = 100) -> list[tuple[UUID, int]]: ...

    async def delete_excess_facts(
        self,
        agent_id: UUID,
        room_id: UUID,
        *,
        keep: int,
        half_life_ms: float,
        limit: int,
        default_confidence: float = 0.5,
    ) -> int: ...

    async def delete_orphan_facts(
        self, agent_id: UUID, *, cursor: str | None = None, scan_limit: int = 500
    ) -> OrphanSweep: ...
