"""The elizaOS data model in pydantic v2: Memory, Content, Entity, Room, World, State, model types."""

from __future__ import annotations

from core.types.component import Component
from core.types.environment import ChannelType, Entity, Room, World
from core.types.log import (
    ActionLogBody,
    ActionLogResult,
    Log,
    LogType,
    ModelUsageBody,
    action_log,
    model_usage_log,
)
from core.types.media import ContentType, Media
from core.types.memory import Content, Memory, MemoryMetadata, MemoryType
from core.types.models import ModelType
from core.types.relationship import Relationship
from core.types.state import State
from core.types.task import Task, TaskMetadata, TaskOption, TaskStatus, TaskUpdate

__all__ = [
    "ActionLogBody",
    "ActionLogResult",
    "ChannelType",
    "Component",
    "Content",
    "ContentType",
    "Entity",
    "Log",
    "LogType",
    "Media",
    "Memory",
    "MemoryMetadata",
    "MemoryType",
    "ModelType",
    "ModelUsageBody",
    "Relationship",
    "Room",
    "State",
    "Task",
    "TaskMetadata",
    "TaskOption",
    "TaskStatus",
    "TaskUpdate",
    "World",
    "action_log",
    "model_usage_log",
]
