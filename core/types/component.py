"""Component: typed data one agent keeps about an entity (elizaOS ``Component``, ``types/environment.ts``)."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from pydantic import Field

from core.types._base import ElizaModel
from core.types.memory import now_ms


class Component(ElizaModel):
    """A piece of typed, open-ended data attached to an entity.

    elizaOS requires ``room_id``, ``world_id`` and ``source_entity_id``; its own SQL schema
    makes the last two nullable. Here all three are optional: a component that holds an
    entity's profile belongs to no room.

    Attributes:
        id: Component id (random uuid4 when not given).
        entity_id: The entity the data is about.
        agent_id: The agent that keeps it.
        room_id: The room it was learnt in, if any.
        world_id: The world it applies to, if any (e.g. a role on one server).
        source_entity_id: Who asserted it, if known.
        type: What the data is (``"profile"``, ``"role"``, ...): plugins look components up by it.
        data: The data itself (JSON object).
        created_at: Milliseconds since the epoch.
    """

    id: UUID = Field(default_factory=uuid.uuid4)
    entity_id: UUID
    agent_id: UUID
    room_id: UUID | None = None
    world_id: UUID | None = None
    source_entity_id: UUID | None = None
    type: str = Field(min_length=1)
    data: dict[str, Any] = {}
    created_at: int = Field(default_factory=now_ms)
