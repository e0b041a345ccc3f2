"""Where conversations happen: Entity, Room, World and ChannelType (elizaOS ``types/environment.ts``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from core.types._base import ElizaModel


class ChannelType(StrEnum):
    """elizaOS ``ChannelType``: the kind of room a message arrives in."""

    SELF = "SELF"
    DM = "DM"
    GROUP = "GROUP"
    VOICE_DM = "VOICE_DM"
    VOICE_GROUP = "VOICE_GROUP"
    FEED = "FEED"
    THREAD = "THREAD"
    WORLD = "WORLD"
    FORUM = "FORUM"
    API = "API"

    @property
    def is_direct(self) -> bool:
        """True where every message is addressed to the agent (no should-respond decision)."""
        return self in {ChannelType.DM, ChannelType.VOICE_DM, ChannelType.SELF, ChannelType.API}


class Entity(ElizaModel):
    """A participant (user or agent) as one agent knows it.

    Attributes:
        id: Entity id, unique per agent (see ``core.uuid.create_unique_uuid``).
        agent_id: The agent this view of the entity belongs to.
        names: Known names, most recent first.
        metadata: Free-form, per source (e.g. ``{"api": {"userName": ...}}``).
    """

    id: UUID
    agent_id: UUID
    names: list[str] = []
    metadata: dict[str, Any] = {}


class World(ElizaModel):
    """A server or workspace grouping rooms."""

    id: UUID
    agent_id: UUID
    name: str | None = None
    server_id: str | None = None
    metadata: dict[str, Any] = {}


class Room(ElizaModel):
    """A channel or conversation."""

    id: UUID
    agent_id: UUID
    name: str | None = None
    source: str = "api"
    type: ChannelType = ChannelType.DM
    world_id: UUID | None = None
    channel_id: str | None = None
    server_id: str | None = None
    metadata: dict[str, Any] = {}
