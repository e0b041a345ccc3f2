"""The elizaOS data model in pydantic v2: Memory, Content, Entity, Room, World, State, model types."""

from __future__ import annotations

from core.types.environment import ChannelType, Entity, Room, World
from core.types.memory import Content, Memory, MemoryMetadata, MemoryType
from core.types.models import ModelType
from core.types.state import State

__all__ = [
    "ChannelType",
    "Content",
    "Entity",
    "Memory",
    "MemoryMetadata",
    "MemoryType",
    "ModelType",
    "Room",
    "State",
    "World",
]
