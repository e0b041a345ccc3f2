"""Request and response bodies of the HTTP API (DESIGN.md section 4), camelCase on the wire."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from core.types import ChannelType, Memory


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class MessageBody(ApiModel):
    """``POST /agents/{agent}/messages``."""

    text: str = Field(min_length=1, max_length=32_000)
    entity_id: UUID | None = None
    room_id: UUID | None = None
    world_id: UUID | None = None
    source: str = Field(default="api", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    user_name: str | None = Field(default=None, max_length=100)
    channel_type: ChannelType = ChannelType.DM

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text must not be blank")
        return value


class SearchBody(ApiModel):
    """``POST /agents/{agent}/memories/search``."""

    query: str = Field(min_length=1, max_length=8_000)
    room_id: UUID | None = None
    table: str = Field(default="messages", pattern=r"^[a-z_]{1,32}$")
    count: int = Field(default=10, ge=1, le=100)
    threshold: float = Field(default=0.0, ge=-1.0, le=1.0)


def memory_json(memory: Memory) -> dict[str, Any]:
    """A memory as the API returns it (elizaOS JSON, without the vector)."""
    return memory.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"embedding"})
