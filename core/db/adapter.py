"""The database adapter protocol: what the runtime needs from storage (elizaOS ``IDatabaseAdapter``).

Every method is scoped by ``agent_id``. ``PostgresAdapter`` is the implementation; the
protocol keeps the runtime independent of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from core.types import Entity, Memory, Room, World


@dataclass(frozen=True)
class AgentRecord:
    """A stored agent: its id, name and character document (elizaOS JSON)."""

    id: UUID
    name: str
    character: dict[str, Any]


@dataclass(frozen=True)
class EmbeddingTarget:
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


@dataclass(frozen=True)
class EmbeddingRow:
    """A computed vector to store for ``memory_id`` (made from the text whose hash is ``content_hash``)."""

    memory_id: UUID
    agent_id: UUID
    content_hash: str
    model: str
    vector: Sequence[float]


class DatabaseAdapter(Protocol):
    """Storage used by ``AgentRuntime`` and the handlers. Sections follow ``core/db/postgres/`` modules."""

    # -- agents (postgres/agents.py) ---------------------------------------------------------

    async def upsert_agents(self, agents: Sequence[AgentRecord]) -> None: ...

    async def get_agents(self) -> list[AgentRecord]: ...

    # -- entities, worlds, rooms, participants (postgres/connections.py) -----------------------

    async def ensure_connection(self, entity: Entity, room: Room, world: World | None) -> None: ...

    async def get_room(self, agent_id: UUID, room_id: UUID) -> Room | None: ...

    async def get_entity_names(self, agent_id: UUID, entity_ids: Sequence[UUID]) -> dict[UUID, str]: ...

    # -- memories (postgres/memories.py) -------------------------------------------------------

    async def create_memories(self, memories: Sequence[Memory], table: str) -> None: ...

    async def get_memories(self, agent_id: UUID, room_id: UUID, table: str, count: int) -> list[Memory]: ...

    # -- embeddings (postgres/embeddings.py) ---------------------------------------------------

    async def get_embedding_targets(self, memory_ids: Sequence[UUID]) -> list[EmbeddingTarget]: ...

    async def upsert_embeddings(self, rows: Sequence[EmbeddingRow]) -> int: ...

    async def search_memories(
        self,
        agent_id: UUID,
        embedding: Sequence[float],
        *,
        table: str,
        room_id: UUID | None = None,
        count: int = 10,
        match_threshold: float = 0.0,
    ) -> list[Memory]: ...
